package integration

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The HTML pages an operator's visitors see, through the running gateway.

// readmeBlueprint is the first YAML block of README.md's Blueprints section.
func readmeBlueprint(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Blueprints\n")
	if !ok {
		t.Fatal("README.md has no Blueprints section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("README.md's Blueprints section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// importReadmeBlueprint imports the README's example (flow staff-login) into
// the running gateway.
func importReadmeBlueprint(t *testing.T) {
	t.Helper()
	if status, body := adminDo(t, "POST", "/flowgate/import?name=README.yaml", readmeBlueprint(t), "application/yaml"); status != 200 {
		t.Fatalf("importing the README's blueprint: %d %s", status, body)
	}
}

// formPost sends the form of the page last shown at page (its CSRF token
// added) to the flow at action.
func (g *gateway) formPost(page, action string, kv ...string) (*http.Response, string) {
	g.t.Helper()
	resp, body := g.do("GET", page, "")
	m := csrfPattern.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		g.t.Fatalf("GET %s: %d\n%s", page, resp.StatusCode, body)
	}
	return g.do("POST", action, form(append([]string{"csrf_token", m[1]}, kv...)...), formType)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("%s lacks %s", what, want)
		}
	}
	if t.Failed() {
		t.Fatalf("%s:\n%s", what, body)
	}
}

// The README's example over HTML: step counts without the stages that show no
// page, "Stay signed in" and the show/hide control on the password page, the
// deny stage for a non-staff user with a way to use another account, and a
// persistent session for a staff member who asked for one.
func TestReadmeBlueprintPages(t *testing.T) {
	g := startGateway(t, "", "")
	importReadmeBlueprint(t)
	const flow = "/.flowgate/flows/staff-login/"

	resp, body := g.do("GET", flow+"?next=%2Fapp", "")
	mustContain(t, "identification page", body, "Step 1 of 2")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	resp, _ = g.formPost(flow, flow, "uid_field", "bob")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("identification POST: %d", resp.StatusCode)
	}
	_, body = g.do("GET", flow, "")
	mustContain(t, "password page", body, "Step 2 of 2",
		`Signing in as <strong>bob</strong> — <a href="/.flowgate/flows/staff-login/?next=%2Fapp">not you?</a>`,
		`<input type="checkbox" id="f-remember_me" name="remember_me" value="true">`,
		`data-reveal="f-password"`, `<script src="/.flowgate/static/flowgate.js" defer></script>`)
	if strings.Contains(body, "onclick") || regexp.MustCompile(`<script>`).MatchString(body) {
		t.Fatal("inline script on the password page")
	}
	resp, body = g.formPost(flow, flow, "password", "pw-bob", "remember_me", "true")
	if resp.StatusCode != http.StatusForbidden || g.sessionCookie() != nil {
		t.Fatalf("non-staff: %d, session %v", resp.StatusCode, g.sessionCookie())
	}
	mustContain(t, "denied page", body, "This sign-in is for staff only.", "<title>Access denied · ",
		`<h1 id="page-title">Access denied</h1>`, `<a href="/.flowgate/flows/staff-login/?next=%2Fapp">Use another account</a>`)

	// Another account, from the link: a fresh execution that keeps next.
	_, body = g.do("GET", flow+"?next=%2Fapp", "")
	mustContain(t, "identification page again", body, `id="f-uid_field"`, "Step 1 of 2")
	g.formPost(flow, flow, "uid_field", "alice")
	resp, _ = g.formPost(flow, flow, "password", "pw-alice", "remember_me", "true")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
		t.Fatalf("staff: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	remembered := false
	for _, c := range resp.Cookies() {
		// session_duration 24h, plus remember_me_offset 30 days.
		if c.Name == "flowgate_session" && c.MaxAge > 30*24*3600 {
			remembered = true
		}
	}
	if !remembered {
		t.Fatalf("\"Stay signed in\" on the password page did not make a lasting cookie: %v", resp.Header.Values("Set-Cookie"))
	}

	resp, body = g.do("GET", "/.flowgate/static/flowgate.js", "")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "data-reveal") {
		t.Fatalf("flowgate.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// "Not you?" on the password page goes back to identification, and the flow
// still ends where the visitor was going.
func TestNotYouRestartsKeepingNext(t *testing.T) {
	g := startGateway(t, "", "")
	token := g.startHTML() // next=/home
	g.do("POST", htmlFlow, form("csrf_token", token, "uid_field", "bob"), formType)
	_, body := g.do("GET", htmlFlow, "")
	m := regexp.MustCompile(`<a href="([^"]+)">not you\?</a>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no \"not you?\" link:\n%s", body)
	}
	_, body = g.do("GET", m[1], "")
	mustContain(t, "page after \"not you?\"", body, `id="f-uid_field"`, "Step 1 of 2")
	if strings.Contains(body, "Signing in as") {
		t.Fatal("still signing in as bob")
	}
	g.formPost(htmlFlow, htmlFlow, "uid_field", "alice")
	resp, _ := g.formPost(htmlFlow, htmlFlow, "password", "pw-alice")
	if resp.Header.Get("Location") != "/home" {
		t.Fatalf("after \"not you?\" the flow ends at %q, want /home", resp.Header.Get("Location"))
	}
}

// follow GETs path and the redirects after it, and returns the last response
// and the path it came from.
func (g *gateway) follow(path string, headers ...string) (*http.Response, string, string) {
	g.t.Helper()
	for range 8 {
		resp, body := g.do("GET", path, "", headers...)
		loc := resp.Header.Get("Location")
		if loc == "" || !strings.HasPrefix(loc, "/") {
			return resp, body, path
		}
		path = loc
	}
	g.t.Fatalf("too many redirects, at %s", path)
	return nil, "", ""
}

// Signing out without a target says so; with one, it goes there; the JSON API
// is unchanged.
func TestSignedOutPage(t *testing.T) {
	g := startGateway(t, "", "")
	g.login("alice", "pw-alice", "/")
	resp, body, at := g.follow("/.flowgate/logout")
	if resp.StatusCode != 200 || at != "/.flowgate/signed-out/" || g.sessionCookie() != nil {
		t.Fatalf("logout ended at %s with %d (session %v)", at, resp.StatusCode, g.sessionCookie())
	}
	mustContain(t, "signed-out page", body, "<title>You have been signed out · ", `<h1 id="page-title">You have been signed out</h1>`,
		`<a href="/.flowgate/default/authentication/">Sign in again</a>`)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("signed-out page without the flow page headers")
	}
	_, body = g.do("GET", "/.flowgate/signed-out/?next=%2Fdocs", "")
	mustContain(t, "signed-out page with next", body, `<a href="/.flowgate/default/authentication/?next=%2Fdocs">Sign in again</a>`)

	g.login("alice", "pw-alice", "/")
	if resp, _, at := g.follow("/.flowgate/logout?next=%2Fbye"); at != "/bye" || g.sessionCookie() != nil {
		t.Fatalf("logout with next ended at %s (%d)", at, resp.StatusCode)
	}
	g.login("alice", "pw-alice", "/")
	if _, res := g.getJSON("/.flowgate/api/v1/flows/default-invalidation/"); res["type"] != "redirect" || res["to"] != "/" {
		t.Fatalf("JSON logout: %v", res)
	}
}

var errorsBox = regexp.MustCompile(`<div class="errors" role="alert">.*?</div>`)

// A locked account's password page shows the lock as an error, word for word
// the same for a known and an unknown name, and the right password is refused.
func TestLockoutPageIsAnError(t *testing.T) {
	g := startGateway(t, "", "")
	boxes := map[string]string{}
	for _, name := range []string{"alice", "ghost"} {
		for range 5 {
			g.login(name, "wrong", "/")
		}
		token := g.startHTML()
		g.do("POST", htmlFlow, form("csrf_token", token, "uid_field", name), formType)
		resp, _ := g.formPost(htmlFlow, htmlFlow, "password", "pw-alice")
		if resp.StatusCode != http.StatusSeeOther || g.sessionCookie() != nil {
			t.Fatalf("%s while locked: %d, session %v", name, resp.StatusCode, g.sessionCookie())
		}
		_, body := g.do("GET", htmlFlow, "")
		boxes[name] = errorsBox.FindString(body)
		if strings.Contains(body, `class="messages"`) {
			t.Fatalf("%s: the lock is shown as a plain message:\n%s", name, body)
		}
	}
	want := `<div class="errors" role="alert"><p>Too many failed attempts. Try again later.</p></div>`
	if boxes["alice"] != want || boxes["ghost"] != want {
		t.Fatalf("lock errors differ or are missing:\nalice: %s\nghost: %s", boxes["alice"], boxes["ghost"])
	}
}

// Status pages keep next in their way back in, and their heading is their title.
func TestStatusPagesKeepNext(t *testing.T) {
	g := startGateway(t, "", "\t\tpolicy staff-only")
	resp, body := g.do("GET", "/.flowgate/flows/nope/?next=%2Fx", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown flow: %d", resp.StatusCode)
	}
	mustContain(t, "not-found page", body, "<title>Not found · ", `<h1 id="page-title">Not found</h1>`,
		`<a href="/.flowgate/default/authentication/?next=%2Fx">Sign in</a>`)

	// A form sent to a flow this browser has no execution of.
	fresh, _ := cookiejar.New(nil)
	jar := g.tc.Client.Jar
	g.tc.Client.Jar = fresh
	resp, body = g.do("POST", htmlFlow, form("csrf_token", "x", "uid_field", "bob"), formType)
	g.tc.Client.Jar = jar
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("expired: %d", resp.StatusCode)
	}
	mustContain(t, "expired page", body, "<title>This page has expired · ", `<h1 id="page-title">This page has expired</h1>`,
		`<a href="/.flowgate/flows/default-authentication/?next=">Start over</a>`)

	// Signed in, but the site's policy says no: who, and how to be someone else.
	g.login("bob", "pw-bob", "/")
	resp, body = g.do("GET", "/admin?x=1", "", "Accept: text/html")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("policy denial: %d", resp.StatusCode)
	}
	mustContain(t, "403 page", body, "<title>Access denied · ", "Staff only.", "You are signed in as <strong>bob</strong>.",
		`<a href="/.flowgate/logout?next=%2Fadmin%3Fx%3D1">Sign in as someone else</a>`, `<a href="/.flowgate/logout">Sign out</a>`)
	resp, _, at := g.follow("/.flowgate/logout?next=%2Fadmin%3Fx%3D1", "Accept: text/html")
	if resp.StatusCode != 200 || g.sessionCookie() != nil || at != htmlFlow+"?next=%2Fadmin%3Fx%3D1" {
		t.Fatalf("sign in as someone else: %d at %s, session %v", resp.StatusCode, at, g.sessionCookie())
	}
}
