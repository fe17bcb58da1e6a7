package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium. Under CI=true a missing browser fails the
// test; locally it skips and says why.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := exec.LookPath(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (CI=true): make test installs it with apt-get install chromium")
	}
	t.Skip("chromium not found; install Debian's chromium (make test does) to run the browser test")
	return ""
}

// A real browser signs in through the HTML form, lands on the protected page,
// signs out, and leaves a screenshot of every step in the test's temp dir.
func TestBrowserLoginLogout(t *testing.T) {
	path := chromiumPath(t)
	startGateway(t, "", "")
	shots := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(420, 760),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser; its context must not carry the timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		}
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return v
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	do(chromedp.Navigate(base+"/dashboard?tab=1"), chromedp.WaitVisible(`#f-uid_field`), shot("1-identification"))
	step := text(`.step`)
	do(chromedp.SendKeys(`#f-uid_field`, "alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-password`), shot("2-password"),
		chromedp.SendKeys(`#f-password`, "wrong"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#e-password`), shot("3-wrong-password"),
		chromedp.SendKeys(`#f-password`, "pw-alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`pre`), shot("4-protected-page"))
	loc := location()
	upstreamBody := text(`body`)
	do(chromedp.Navigate(base+"/.flowgate/logout"), chromedp.Navigate(base+"/dashboard"),
		chromedp.WaitVisible(`#f-uid_field`), shot("5-after-logout"))
	afterLogout := location()
	// The show/hide control of a password stage with allow_show_password
	// (the README's example flow): a script file under the CSP.
	importReadmeBlueprint(t)
	do(chromedp.Navigate(base+"/.flowgate/flows/staff-login/"), chromedp.WaitVisible(`#f-uid_field`),
		chromedp.SendKeys(`#f-uid_field`, "alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`button.reveal`), chromedp.SendKeys(`#f-password`, "pw-alice"),
		chromedp.Click(`button.reveal`), shot("6-password-shown"))
	if typ, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("f-password").type`)); err != nil || typ != "text" {
		t.Errorf("after clicking show, the password input's type is %q (%v), want text", typ, err)
	}
	if step != "Step 1 of 2" {
		t.Errorf("step indicator %q", step)
	}
	if loc != base+"/dashboard?tab=1" || !strings.Contains(upstreamBody, `"Remote-User":["alice"]`) {
		t.Fatalf("after login at %s:\n%s", loc, upstreamBody)
	}
	if !strings.Contains(afterLogout, "/.flowgate/flows/default-authentication/") {
		t.Fatalf("after logout the protected page did not ask to sign in: %s", afterLogout)
	}
	for _, n := range []string{"1-identification", "2-password", "3-wrong-password", "4-protected-page", "5-after-logout", "6-password-shown"} {
		if st, err := os.Stat(filepath.Join(shots, n+".png")); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s missing", n)
		}
	}
	if dir := os.Getenv("FLOWGATE_SCREENSHOTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
	}
}
