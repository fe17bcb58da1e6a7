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

// startChromium starts a headless Chromium for one test, closed when the test
// ends, and returns its context (without a deadline: the first action starts
// the browser, and a deadline there would end the browser with it).
func startChromium(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		// This machine has no network: without these Chromium keeps dialling out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// tab drives one browser tab (or profile) in a test: a failed step fails the
// test with the page's text; screenshots go to shots, and are copied to
// $FLOWGATE_SCREENSHOTS (names prefixed) when the test ends.
type tab struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// newTab bounds the browser's steps by timeout; shots is the screenshot
// directory ("" for a new temporary one), prefix names copies of them.
func newTab(t *testing.T, bctx context.Context, timeout time.Duration, shots, prefix string) *tab {
	t.Helper()
	if shots == "" {
		shots = t.TempDir()
		t.Cleanup(func() { copyScreenshots(shots, prefix) })
	}
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancel)
	return &tab{t: t, ctx: ctx, shots: shots}
}

// shot saves a full-page screenshot as <name>.png.
func (b *tab) shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644)
	}
}

// do runs the steps; on failure the test ends with the page's text.
func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		body, _ := chromedp.Run(context.WithoutCancel(b.ctx), chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		b.t.Fatalf("browser: %v\npage:\n%s", err, body)
	}
}

// text is the text of the first element matching sel.
func (b *tab) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return v
}

// location is the tab's URL.
func (b *tab) location() string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// copyScreenshots copies a test's screenshots to $FLOWGATE_SCREENSHOTS, if set.
func copyScreenshots(shots, prefix string) {
	dir := os.Getenv("FLOWGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	os.MkdirAll(dir, 0o755)
	files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			os.WriteFile(filepath.Join(dir, prefix+filepath.Base(f)), b, 0o644)
		}
	}
}

// A real browser signs in through the HTML form, lands on the protected page,
// signs out, and leaves a screenshot of every step in the test's temp dir.
func TestBrowserLoginLogout(t *testing.T) {
	chromiumPath(t)
	startGateway(t, "", "")
	b := newTab(t, startChromium(t, 420, 760), 60*time.Second, "", "")
	do, shot, text, location, ctx, shots := b.do, b.shot, b.text, b.location, b.ctx, b.shots

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
}
