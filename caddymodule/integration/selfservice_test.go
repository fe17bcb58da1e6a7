package integration

import (
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// strongPassword passes the examples' password-strength policy.
const strongPassword = "correct horse battery staple 7!"

// selfServiceGateway runs a gateway whose blueprint directory holds the default
// flows, the demo users, examples/blueprints/self-service.yaml and, with a
// mailbox, self-service-mail.yaml.example (as a .yaml) with an smtp block.
func selfServiceGateway(t *testing.T, box *mailbox) *gateway {
	t.Helper()
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	copyExample := func(src, dst string) {
		b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "blueprints", src))
		if err != nil {
			t.Fatal(err)
		}
		g.withBlueprint(dst, string(b))
	}
	copyExample("self-service.yaml", "self-service.yaml")
	extra := ""
	if box != nil {
		copyExample("self-service-mail.yaml.example", "self-service-mail.yaml")
		extra = smtpBlock(box.port)
	}
	g.load(extra, "")
	return g
}

// freshJar gives the tester's client a new cookie jar, like another browser.
func (g *gateway) freshJar() http.CookieJar {
	old := g.tc.Client.Jar
	jar, _ := cookiejar.New(nil)
	g.tc.Client.Jar = jar
	return old
}

// messages joins a challenge's messages and field errors: what the page shows.
func messages(m map[string]any) string {
	var out []string
	for _, v := range m["messages"].([]any) {
		out = append(out, v.(string))
	}
	if errs, ok := m["errors"].(map[string]any); ok {
		for _, list := range errs {
			for _, v := range list.([]any) {
				out = append(out, v.(string))
			}
		}
	}
	return strings.Join(out, " ")
}

var enrollLinkRE = regexp.MustCompile(`http://localhost:9080/\.flowgate/flows/default-enrollment/\?flow_token=[A-Za-z0-9_.%-]+`)

// Enrollment: a weak password gets the policy's message and creates nothing; a
// strong one creates the user inactive and mails a link that, followed in
// another browser, activates the account and signs in. The sign-in page links
// to enrollment and recovery.
func TestSelfServiceEnrollment(t *testing.T) {
	box := startMailbox(t)
	g := selfServiceGateway(t, box)

	_, page := g.do("GET", "/.flowgate/flows/default-authentication/", "", "Accept: text/html")
	for _, want := range []string{`href="/.flowgate/flows/default-enrollment/">Create an account`, `href="/.flowgate/flows/default-recovery/">Forgot password?`} {
		if !strings.Contains(page, want) {
			t.Fatalf("sign-in page lacks %q:\n%s", want, page)
		}
	}

	api := "/.flowgate/api/v1/flows/default-enrollment/"
	if _, ch := g.getJSON(api); stage(ch) != "prompt" {
		t.Fatalf("first challenge: %v", ch)
	}
	answer := func(pw string) map[string]any {
		_, ch := g.postJSON(api, map[string]string{"username": "carol", "email": "carol@example.com", "password": pw, "password_repeat": pw})
		return ch
	}
	ch := answer("password")
	if stage(ch) != "prompt" || !strings.Contains(messages(ch), "Choose a stronger password") {
		t.Fatalf("weak password: %v", ch)
	}
	if len(box.all()) != 0 {
		t.Fatal("a mail went out for a weak password")
	}
	ch = answer(strongPassword)
	if data, _ := ch["data"].(map[string]any); stage(ch) != "email" || data["email_sent"] != true {
		t.Fatalf("strong password (so carol was not created before): %v", ch)
	}
	// Created, but inactive until the link is followed.
	g.freshJar()
	if res := g.login("carol", strongPassword, "/"); res["type"] == "redirect" {
		t.Fatalf("inactive carol signed in: %v", res)
	}
	msgs := box.all()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "To: carol@example.com") {
		t.Fatalf("mails: %q", msgs)
	}
	decoded, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(msgs[0])))
	link := enrollLinkRE.FindString(string(decoded))
	if link == "" {
		t.Fatalf("no link in mail:\n%s", decoded)
	}
	g.freshJar()
	if resp, _ := g.do("GET", strings.TrimPrefix(link, base), "", "Accept: text/html"); resp.StatusCode/100 != 3 {
		t.Fatalf("following the link: %d", resp.StatusCode)
	}
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "carol" {
		t.Fatalf("after the link: %d %v", status, hdr)
	}
	// Active now: signing in with the password works in yet another browser.
	g.freshJar()
	if res := g.login("carol", strongPassword, "/"); res["type"] != "redirect" {
		t.Fatalf("carol after activation: %v", res)
	}
}

// Password change: the policy applies; afterwards the old password fails, the
// new one works, the changing session stays and the user's others end.
func TestSelfServicePasswordChange(t *testing.T) {
	g := selfServiceGateway(t, nil)
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice signs in: %v", res)
	}
	jarA := g.freshJar()
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice signs in again: %v", res)
	}
	jarB := g.tc.Client.Jar
	g.tc.Client.Jar = jarA

	api := "/.flowgate/api/v1/flows/default-password-change/"
	if _, ch := g.getJSON(api); stage(ch) != "prompt" {
		t.Fatalf("first challenge: %v", ch)
	}
	_, ch := g.postJSON(api, map[string]string{"password": "short", "password_repeat": "short"})
	if stage(ch) != "prompt" || !strings.Contains(messages(ch), "at least 8 characters") {
		t.Fatalf("short password: %v", ch)
	}
	_, ch = g.postJSON(api, map[string]string{"password": strongPassword, "password_repeat": strongPassword})
	if ch["type"] != "redirect" {
		t.Fatalf("strong password: %v", ch)
	}
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("the changing session: %d %v", status, hdr)
	}
	g.tc.Client.Jar = jarB
	if status, _ := g.upstreamHeaders("/inside"); status == 200 {
		t.Fatal("alice's other session survived the password change")
	}
	g.freshJar()
	if res := g.login("alice", "pw-alice", "/"); res["type"] == "redirect" {
		t.Fatalf("old password still works: %v", res)
	}
	g.freshJar()
	if res := g.login("alice", strongPassword, "/"); res["type"] != "redirect" {
		t.Fatalf("new password: %v", res)
	}
	// Not signed in, the flow is not for you.
	g.freshJar()
	if _, ch := g.getJSON(api); ch["type"] != "denied" {
		t.Fatalf("password change without a session: %v", ch)
	}
}

// Unenrollment: the password and a consent confirm, the user and their session are gone.
func TestSelfServiceUnenrollment(t *testing.T) {
	g := selfServiceGateway(t, nil)
	if res := g.login("bob", "pw-bob", "/"); res["type"] != "redirect" {
		t.Fatalf("bob signs in: %v", res)
	}
	api := "/.flowgate/api/v1/flows/default-unenrollment/"
	if _, ch := g.getJSON(api); stage(ch) != "password" {
		t.Fatalf("first challenge: %v", ch)
	}
	if _, ch := g.postJSON(api, map[string]string{"password": "wrong"}); stage(ch) != "password" {
		t.Fatalf("wrong password: %v", ch)
	}
	if _, ch := g.postJSON(api, map[string]string{"password": "pw-bob"}); stage(ch) != "consent" {
		t.Fatalf("right password: %v, want the consent step", ch)
	}
	// Not agreeing deletes nothing.
	if _, ch := g.postJSON(api, map[string]any{"consent": false}); stage(ch) != "consent" {
		t.Fatalf("consent refused: %v", ch)
	}
	if status, _ := g.upstreamHeaders("/inside"); status != 200 {
		t.Fatalf("bob signed out although he did not agree: %d", status)
	}
	if _, ch := g.postJSON(api, map[string]any{"consent": true}); ch["type"] != "redirect" {
		t.Fatalf("consent given: %v", ch)
	}
	if status, _ := g.upstreamHeaders("/inside"); status == 200 {
		t.Fatal("still signed in after unenrollment")
	}
	g.freshJar()
	_, ch := g.getJSON(apiFlow)
	if _, ch = g.postJSON(apiFlow, map[string]string{"uid_field": "bob"}); stage(ch) == "password" {
		// Identification may pretend; the password must fail either way.
		if _, res := g.postJSON(apiFlow, map[string]string{"password": "pw-bob"}); res["type"] == "redirect" {
			t.Fatalf("deleted bob signed in: %v", res)
		}
	}
}

// The account page: links to the flows that exist and sign-out when signed
// in; a redirect to sign in (and back) when not.
func TestSelfServiceAccountPage(t *testing.T) {
	g := selfServiceGateway(t, nil)
	resp, _ := g.do("GET", "/.flowgate/account", "", "Accept: text/html")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/.flowgate/default/authentication/?next=%2F.flowgate%2Faccount" {
		t.Fatalf("not signed in: %d %q", resp.StatusCode, loc)
	}
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice signs in: %v", res)
	}
	resp, page := g.do("GET", "/.flowgate/account", "", "Accept: text/html")
	if resp.StatusCode != 200 {
		t.Fatalf("account page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{
		"<strong>alice</strong> (alice@example.com)",
		`href="/.flowgate/flows/default-password-change/?next=%2f.flowgate%2faccount">Change password`,
		`href="/.flowgate/flows/default-unenrollment/">Delete account`,
		`href="/.flowgate/logout">Sign out`,
	} {
		if !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
			t.Fatalf("account page lacks %q:\n%s", want, page)
		}
	}

	// Without the self-service flows only sign-out is offered.
	g = startGateway(t, "", "")
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice signs in: %v", res)
	}
	resp, page = g.do("GET", "/.flowgate/account", "", "Accept: text/html")
	if strings.Contains(page, "Change password") || strings.Contains(page, "Delete account") || !strings.Contains(page, "Sign out") {
		t.Fatalf("account page without the flows: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
}

// The shipped invite-enrollment flow: denied without an invitation; with one
// from the CLI, a new account is created and signed in.
func TestSelfServiceInviteEnrollment(t *testing.T) {
	g := selfServiceGateway(t, nil)
	api := "/.flowgate/api/v1/flows/invite-enrollment/"
	if _, res := g.getJSON(api); res["type"] != "denied" {
		t.Fatalf("without an invitation: %v", res)
	}
	out, err := runCLI(t, "", "invite", "create", "--flow", "invite-enrollment", "--single-use", "--json", "--address", "localhost:2999")
	if err != nil {
		t.Fatalf("invite create: %v %s", err, out)
	}
	m := decode(t, out)
	link, _ := m["url"].(string)
	if !strings.Contains(link, "itoken=") {
		t.Fatalf("invitation: %v", m)
	}
	g.freshJar()
	_, token, _ := strings.Cut(link, "itoken=")
	if _, ch := g.getJSON(api + "?itoken=" + token); stage(ch) != "prompt" {
		t.Fatalf("with the invitation: %v", ch)
	}
	_, res := g.postJSON(api, map[string]string{"username": "dora", "email": "dora@example.com",
		"password": strongPassword, "password_repeat": strongPassword})
	if res["type"] != "redirect" {
		t.Fatalf("enrollment: %v", res)
	}
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "dora" {
		t.Fatalf("dora signed in: %d %v", status, hdr)
	}
}
