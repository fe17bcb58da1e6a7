package integration

import (
	"context"
	"io"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var recoveryLinkRE = regexp.MustCompile(`http://localhost:9080/\.flowgate/flows/default-recovery/\?flow_token=[A-Za-z0-9_.%-]+`)

// A real browser walks the self-service pages: sign-up from the sign-in page
// (a weak password gets the policy's message, a strong one the "check your
// inbox" page), the mailed link opened in another browser profile signs the
// new user in; then "Forgot password?", the mailed link, a new password,
// signed in, signed out. Every page is screenshotted into the test's temp dir.
func TestBrowserSelfService(t *testing.T) {
	chromiumPath(t)
	box := startMailbox(t)
	selfServiceGateway(t, box)
	shots := t.TempDir()
	t.Logf("screenshots in %s", shots)

	ctx, cancelTimeout := context.WithTimeout(startChromium(t, 420, 900), 45*time.Second)
	defer cancelTimeout()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			p := filepath.Join(shots, name+".png")
			t.Logf("screenshot %s", p)
			return chromedp.Void{}, os.WriteFile(p, buf, 0o644)
		}
	}
	do := func(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			body, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("browser: %v\npage:\n%s", err, body)
		}
	}
	// waitText waits until the page's visible text contains s, across the
	// navigation a form submission starts.
	waitText := func(ctx context.Context, s string) {
		t.Helper()
		var body string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			body, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" && document.body ? document.body.innerText : ""`))
			if strings.Contains(body, s) {
				return
			}
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("waiting for %q at %s:\n%s", s, loc, body)
	}
	location := func(ctx context.Context) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	fill := func(fields ...string) chromedp.Action[chromedp.Void] {
		var steps []chromedp.Action[chromedp.Void]
		for i := 0; i+1 < len(fields); i += 2 {
			steps = append(steps, chromedp.Clear(fields[i]), chromedp.SendKeys(fields[i], fields[i+1]))
		}
		return chromedp.Steps(steps...)
	}
	submit := chromedp.Click(`button[type=submit]`)
	// mailLink waits for mail number n (1-based) and returns the link in it
	// that matches re.
	mailLink := func(n int, to string, re *regexp.Regexp) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(box.all()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		msgs := box.all()
		if len(msgs) != n {
			t.Fatalf("%d mails, want %d", len(msgs), n)
		}
		if !strings.Contains(msgs[n-1], "To: "+to) {
			t.Fatalf("mail %d is not to %s:\n%s", n, to, msgs[n-1])
		}
		decoded, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(msgs[n-1])))
		link := re.FindString(string(decoded))
		if link == "" {
			t.Fatalf("no link in mail %d:\n%s", n, decoded)
		}
		return link
	}

	// (1) Enrollment, starting from the sign-in page.
	do(ctx, chromedp.Navigate(base+"/inside"), chromedp.WaitVisible(`#f-uid_field`), shot("01-sign-in"),
		chromedp.Click(chromedp.CSS(`a[href^="/.flowgate/flows/default-enrollment/"]`)), chromedp.WaitVisible(`#f-password_repeat`), shot("02-enrollment"))
	if loc := location(ctx); !strings.Contains(loc, "/.flowgate/flows/default-enrollment/") {
		t.Fatalf("after clicking Create an account: %s", loc)
	}
	do(ctx, fill(`#f-username`, "carol", `#f-email`, "carol@example.com", `#f-password`, "password", `#f-password_repeat`, "password"), submit)
	waitText(ctx, "Choose a stronger password")
	do(ctx, chromedp.WaitVisible(`#f-password_repeat`), shot("03-weak-password"))
	if n := len(box.all()); n != 0 {
		t.Fatalf("%d mails after a weak password", n)
	}
	do(ctx, fill(`#f-username`, "carol", `#f-email`, "carol@example.com", `#f-password`, strongPassword, `#f-password_repeat`, strongPassword), submit)
	waitText(ctx, "Check your inbox")
	do(ctx, shot("04-check-inbox"))
	link := mailLink(1, "carol@example.com", enrollLinkRE)

	// The link, opened in another browser profile, activates and signs in.
	other, cancelOther := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelOther()
	do(other, chromedp.Navigate(link), chromedp.WaitVisible(`pre`))
	waitText(other, `"Remote-User":["carol"]`)
	do(other, shot("05-enrolled-signed-in"))
	if loc := location(other); strings.Contains(loc, "/.flowgate/") {
		t.Fatalf("after the enrollment link the browser is at %s, not upstream", loc)
	}
	cancelOther()

	// (2) Recovery in the first browser, which is not signed in.
	do(ctx, chromedp.Navigate(base+"/inside"), chromedp.WaitVisible(`#f-uid_field`),
		chromedp.Click(chromedp.CSS(`a[href^="/.flowgate/flows/default-recovery/"]`)), chromedp.WaitVisible(`#f-uid_field`))
	if loc := location(ctx); !strings.Contains(loc, "/.flowgate/flows/default-recovery/") {
		t.Fatalf("after clicking Forgot password?: %s", loc)
	}
	do(ctx, shot("06-recovery-identify"), fill(`#f-uid_field`, "alice"), submit)
	waitText(ctx, "Check your inbox")
	do(ctx, shot("07-recovery-check-inbox"))
	link = mailLink(2, "alice@example.com", recoveryLinkRE)
	const newPassword = "alice's new lighthouse 42 tangerine"
	do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(`#f-password_repeat`), shot("08-new-password"),
		fill(`#f-password`, newPassword, `#f-password_repeat`, newPassword), submit, chromedp.WaitVisible(`pre`))
	waitText(ctx, `"Remote-User":["alice"]`)
	do(ctx, shot("09-recovered-signed-in"))
	if loc := location(ctx); strings.Contains(loc, "/.flowgate/") {
		t.Fatalf("after recovery the browser is at %s, not upstream", loc)
	}

	// Sign out: the protected page asks to sign in again.
	do(ctx, chromedp.Navigate(base+"/.flowgate/logout"), chromedp.Navigate(base+"/inside"),
		chromedp.WaitVisible(`#f-uid_field`), shot("10-signed-out"))
	if loc := location(ctx); !strings.Contains(loc, "/.flowgate/flows/default-authentication/") {
		t.Fatalf("after sign-out the protected page did not ask to sign in: %s", loc)
	}

	files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	if len(files) != 10 {
		t.Errorf("%d screenshots, want 10", len(files))
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s is empty", f)
		}
	}
	copyScreenshots(shots, "selfservice-")
}
