package integration

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/flowgate/flowgate/caddymodule"
)

func TestProtectedSiteRedirectsBrowsersAndRefusesAPIClients(t *testing.T) {
	g := startGateway(t, "", "")
	resp, _ := g.do("GET", "/reports/q3?tab=2", "", "Accept: text/html,application/xhtml+xml")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.flowgate/default/authentication/?next=%2Freports%2Fq3%3Ftab%3D2" {
		t.Fatalf("browser: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := g.do("GET", "/api/items", "", "Accept: application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"login_url":"/.flowgate/default/authentication/?next=%2Fapi%2Fitems"`) {
		t.Fatalf("API client: %d %s", resp.StatusCode, body)
	}
	resp, _ = g.do("POST", "/form", "a=b", "Accept: text/html")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without session: %d, want 401", resp.StatusCode)
	}
	// The designation endpoint sends the browser to the flow, query kept.
	resp, _ = g.do("GET", "/.flowgate/default/authentication/?next=%2Freports", "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.flowgate/flows/default-authentication/?next=%2Freports" {
		t.Fatalf("designation redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = g.do("GET", "/.flowgate/default/recovery/", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no recovery flow: %d, want 404", resp.StatusCode)
	}
}

func TestLoginProxiesWithIdentityAndLogoutEndsSession(t *testing.T) {
	g := startGateway(t, "", "")
	res := g.login("alice", "pw-alice", "/dashboard")
	if res["type"] != "redirect" || res["to"] != "/dashboard" {
		t.Fatalf("login result: %v", res)
	}
	c := g.sessionCookie()
	if c == nil {
		t.Fatal("no session cookie")
	}
	status, hdr := g.upstreamHeaders("/dashboard",
		"Remote-User: mallory", "Remote_User: root", "REMOTE-GROUPS: admins", "remote_email: x@evil.example")
	if status != 200 {
		t.Fatalf("proxied request: %d", status)
	}
	if got := hdr.Values("Remote-User"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("Remote-User = %v (client-sent value must be replaced)", got)
	}
	for k := range hdr {
		if strings.Contains(k, "_") && strings.HasPrefix(strings.ToLower(k), "remote") {
			t.Fatalf("underscore spelling %s reached the upstream", k)
		}
	}
	if hdr.Get("Remote-Email") != "alice@example.com" || hdr.Get("Remote-Name") != "Alice Example" || hdr.Get("Remote-Groups") != "staff" {
		t.Fatalf("identity headers: %v", hdr)
	}
	// The session cookie is the gateway's credential: it never reaches the upstream.
	_, hdr2 := g.upstreamHeaders("/dashboard", "Cookie: theme=dark")
	if c := strings.Join(hdr2.Values("Cookie"), "; "); strings.Contains(c, "flowgate_session") || !strings.Contains(c, "theme=dark") {
		t.Fatalf("upstream Cookie header: %q", c)
	}
	// The placeholders reach other handlers (here reverse_proxy's header_up).
	if hdr.Get("X-Auth-Id") != "alice" || hdr.Get("X-Auth-Groups") != "staff" {
		t.Fatalf("placeholders: X-Auth-Id %q, X-Auth-Groups %q", hdr.Get("X-Auth-Id"), hdr.Get("X-Auth-Groups"))
	}

	// Logout runs the invalidation flow, deletes the session and clears the cookie.
	old := *c
	resp, _ := g.do("GET", "/.flowgate/logout", "")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for i, loc := 0, resp.Header.Get("Location"); i < 5 && loc != "/"; i++ {
		resp, _ = g.do("GET", loc, "")
		loc = resp.Header.Get("Location")
	}
	if g.sessionCookie() != nil {
		t.Fatal("session cookie not cleared")
	}
	// A replayed old cookie is refused: the server-side session is gone.
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{{Name: old.Name, Value: old.Value}})
	g.tc.Client.Jar = jar
	if status, _ := g.upstreamHeaders("/dashboard"); status != http.StatusUnauthorized {
		t.Fatalf("replayed cookie after logout: %d, want 401", status)
	}
}

func TestAuthorizationPolicyDenies403WithoutLoop(t *testing.T) {
	g := startGateway(t, "", "\t\tpolicy staff-only")
	g.login("bob", "pw-bob", "/")
	resp, body := g.do("GET", "/admin", "", "Accept: text/html")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Staff only.") {
		t.Fatalf("bob: %d, want a 403 page with the policy message\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Location") != "" {
		t.Fatal("a denial must not redirect")
	}
	g2 := startGateway(t, "", "\t\tpolicy staff-only")
	g2.login("alice", "pw-alice", "/")
	if status, hdr := g2.upstreamHeaders("/admin"); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("alice: %d", status)
	}
}

func TestWrongPasswordKeepsChallenge(t *testing.T) {
	g := startGateway(t, "", "")
	res := g.login("alice", "nope", "/")
	if res["type"] != "challenge" || stage(res) != "password" {
		t.Fatalf("wrong password: %v", res)
	}
	errs, _ := res["errors"].(map[string]any)
	if errs["password"] == nil {
		t.Fatalf("no field error: %v", res)
	}
	if g.sessionCookie() != nil {
		t.Fatal("session issued for a wrong password")
	}
}

func TestNextValidation(t *testing.T) {
	g := startGateway(t, "\t\ttrusted_redirect_hosts *.example.com app.example.org", "")
	cases := []struct{ next, want string }{
		{"/ok?x=1", "/ok?x=1"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"https://evil.example/", "/"},
		{"https://user@app.example.org/", "/"},
		{"javascript:alert(1)", "/"},
		{"https://app.example.org/x", "https://app.example.org/x"},
		{"https://deep.sub.example.com/y", "https://deep.sub.example.com/y"},
		{"https://evilexample.com/", "/"},
		{"https://example.com.evil.example/", "/"},
		{"http://localhost:9080/self", "http://localhost:9080/self"},
		{"/line\nbreak", "/"},
	}
	for _, tc := range cases {
		t.Run(tc.next, func(t *testing.T) {
			g.tc.Client.Jar, _ = cookiejar.New(nil)
			res := g.login("alice", "pw-alice", tc.next)
			if res["type"] != "redirect" || res["to"] != tc.want {
				t.Fatalf("next %q: got %v, want redirect to %q", tc.next, res, tc.want)
			}
		})
	}
}

func TestSessionSurvivesConfigReload(t *testing.T) {
	g := startGateway(t, "", "")
	g.login("alice", "pw-alice", "/")
	jar := g.tc.Client.Jar
	g.load("\t\texecution_timeout 10m", "") // a new config, same store and keys
	g.tc.Client.Jar = jar
	if status, hdr := g.upstreamHeaders("/"); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("after reload: %d", status)
	}
}

// Identity headers can be renamed, or left out with "-"; client-sent ones are
// removed in every case, so leaving a header out never lets a client set it.
func TestIdentityHeadersRenamedOrLeftOut(t *testing.T) {
	g := startGateway(t, "", "header_user X-User\n\t\theader_email -\n\t\theader_groups -")
	g.login("alice", "pw-alice", "/")
	status, hdr := g.upstreamHeaders("/", "Remote-Email: x@evil.example", "Remote-Groups: admins", "X-User: mallory", "Remote-User: root")
	if status != 200 {
		t.Fatalf("proxied request: %d", status)
	}
	if got := hdr.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("X-User = %v", got)
	}
	for _, k := range []string{"Remote-User", "Remote-Email", "Remote-Groups"} {
		if v, ok := hdr[k]; ok {
			t.Fatalf("%s = %v reached the upstream", k, v)
		}
	}
	if hdr.Get("Remote-Name") != "Alice Example" || hdr.Get("X-Auth-Groups") != "staff" {
		t.Fatalf("Remote-Name %q, groups placeholder %q: a left-out header must not change the others or the placeholders",
			hdr.Get("Remote-Name"), hdr.Get("X-Auth-Groups"))
	}
	resp, _ := g.do("GET", "/.flowgate/auth/verify", "")
	if resp.Header.Get("X-User") != "alice" || resp.Header.Get("Remote-Email") != "" || resp.Header.Get("Remote-Name") != "Alice Example" {
		t.Fatalf("verify headers: %v", resp.Header)
	}
}

func TestVerifyEndpoint(t *testing.T) {
	g := startGateway(t, "", "")
	resp, _ := g.do("GET", "/.flowgate/auth/verify", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("verify without session: %d", resp.StatusCode)
	}
	g.login("alice", "pw-alice", "/")
	resp, _ = g.do("GET", "/.flowgate/auth/verify", "")
	if resp.StatusCode != 200 || resp.Header.Get("Remote-User") != "alice" || resp.Header.Get("Remote-Groups") != "staff" {
		t.Fatalf("verify: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestStaticAssetsAndPageHeaders(t *testing.T) {
	g := startGateway(t, "", "")
	resp, body := g.do("GET", "/.flowgate/static/flowgate.css", "")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".card") {
		t.Fatalf("css: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, body = g.do("GET", "/.flowgate/flows/default-authentication/", "")
	h := resp.Header
	if resp.StatusCode != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") || h.Get("Cache-Control") != "no-store" ||
		h.Get("Referrer-Policy") != "same-origin" {
		t.Fatalf("flow page headers: %d %v", resp.StatusCode, h)
	}
	for _, want := range []string{`autocomplete="username"`, `<label for="f-uid_field">`, `name="csrf_token"`, "Step 1 of 2", "Sign in"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("flow page has a script")
	}
}

func TestBranding(t *testing.T) {
	css := t.TempDir() + "/brand.css"
	if err := os.WriteFile(css, []byte(".card { border-top: 4px solid rebeccapurple; }"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "\t\tbranding {\n\t\t\tname \"Acme Corp\"\n\t\t\tlogo_url https://acme.example/logo.svg\n\t\t\tcss_file "+css+"\n\t\t}", "")
	_, page := g.do("GET", "/.flowgate/flows/default-authentication/", "")
	for _, want := range []string{`<title>Sign in · Acme Corp</title>`, `src="https://acme.example/logo.svg" alt="Acme Corp"`, `href="/.flowgate/static/custom.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	resp, body := g.do("GET", "/.flowgate/static/custom.css", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "rebeccapurple") {
		t.Fatalf("custom css: %d %s", resp.StatusCode, body)
	}
}

// A session slides forward with use, written at most once a minute.
func TestSlidingSessionRefresh(t *testing.T) {
	g := startGateway(t, "", "")
	g.login("alice", "pw-alice", "/")
	appIface, err := caddy.ActiveContext().App("flowgate")
	if err != nil {
		t.Fatal(err)
	}
	st := appIface.(*caddymodule.App).Engine().Store()
	ctx := context.Background()
	u, _ := st.GetUserByUsername(ctx, "alice")
	list, _ := st.ListUserSessions(ctx, u.ID)
	if len(list) != 1 {
		t.Fatalf("%d sessions", len(list))
	}
	s := list[0]
	// Pretend the last activity was two minutes ago, with ten minutes left.
	past := time.Now().Add(-2 * time.Minute)
	if err := st.TouchSession(ctx, s.ID, past, past.Add(12*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if status, _ := g.upstreamHeaders("/"); status != 200 {
		t.Fatalf("request: %d", status)
	}
	after, _ := st.GetSession(ctx, s.ID)
	if time.Since(after.LastSeen) > 5*time.Second || time.Until(after.ExpiresAt) < 11*time.Minute {
		t.Fatalf("not refreshed: last seen %v, expires in %v", after.LastSeen, time.Until(after.ExpiresAt))
	}
	// Within the minute, requests do not write again.
	g.upstreamHeaders("/")
	again, _ := st.GetSession(ctx, s.ID)
	if !again.LastSeen.Equal(after.LastSeen) {
		t.Fatal("session written twice within a minute")
	}
}
