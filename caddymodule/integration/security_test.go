package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The security review's findings, reproduced against the running gateway.

// opLogin is an authentication flow that denies everyone outside staff after
// the password, for the pinned-flow tests.
const opLogin = `version: 1
stages:
  - {name: op-id, type: identification}
  - {name: op-pw, type: password}
  - {name: op-deny, type: deny, config: {deny_message: "Operators only."}}
  - {name: op-login-stage, type: user_login}
flows:
  - slug: op-login
    name: Operators
    designation: authentication
    order: 50
    stages:
      - {stage: op-id, order: 10}
      - {stage: op-pw, order: 20}
      - stage: op-deny
        order: 30
        policies: [{group: staff, negate: true}]
      - {stage: op-login-stage, order: 40}
`

// withBlueprint adds a blueprint file to the gateway's blueprint directory.
func (g *gateway) withBlueprint(name, doc string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.seed, name), []byte(doc), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// loginVia signs in through the JSON API of one flow.
func (g *gateway) loginVia(slug, user, password string) map[string]any {
	g.t.Helper()
	api := "/.flowgate/api/v1/flows/" + slug + "/"
	g.getJSON(api)
	g.postJSON(api, map[string]string{"uid_field": user})
	_, res := g.postJSON(api, map[string]string{"password": password})
	return res
}

// Finding 2: with `flow authentication op-login`, a session made by another
// flow does not sign anyone into the site (nor through auth/verify), unless
// the site lists that flow in accept_flows.
func TestPinnedFlowAcceptsOnlyItsSessions(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("op.yaml", opLogin)
	g.load("", "flow authentication op-login")

	// Bob is no operator: op-login denies him.
	if res := g.loginVia("op-login", "bob", "pw-bob"); res["type"] != "denied" {
		t.Fatalf("bob through op-login: %v", res)
	}
	// He signs in through the default flow, which the site does not pin.
	if res := g.loginVia("default-authentication", "bob", "pw-bob"); res["type"] != "redirect" {
		t.Fatalf("bob through the default flow: %v", res)
	}
	resp, _ := g.do("GET", "/inside", "", "Accept: text/html")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/.flowgate/flows/op-login/") &&
		!strings.Contains(resp.Header.Get("Location"), "/default/authentication/") {
		t.Fatalf("another flow's session on a pinned site: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := g.do("GET", "/.flowgate/auth/verify", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("auth/verify with another flow's session: %d, want 401", resp.StatusCode)
	}
	// The designation endpoint goes to the pinned flow.
	resp, _ = g.do("GET", "/.flowgate/default/authentication/", "")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.flowgate/flows/op-login/") {
		t.Fatalf("designation redirect: %s", resp.Header.Get("Location"))
	}

	// With accept_flows the site takes the default flow's sessions too.
	bobJar := g.tc.Client.Jar
	g.load("", "flow authentication op-login\n\taccept_flows default-authentication")
	g.tc.Client.Jar = bobJar
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "bob" {
		t.Fatalf("accept_flows default-authentication: %d %v", status, hdr)
	}

	// Signing out on the pinned site ends the session whichever flow made it.
	g.load("", "flow authentication op-login")
	g.tc.Client.Jar = bobJar
	bobCookie := g.sessionCookie()
	if _, res := g.getJSON("/.flowgate/api/v1/flows/default-invalidation/"); res["type"] != "redirect" {
		t.Fatalf("logout on the pinned site: %v", res)
	}
	g.load("", "flow authentication op-login\n\taccept_flows default-authentication")
	g.tc.Client.Jar = bobJar
	if status, _ := g.upstreamHeaders("/inside", "Accept: application/json", "Cookie: flowgate_session="+bobCookie.Value); status != http.StatusUnauthorized {
		t.Fatalf("bob's session after logging out on the pinned site: %d, want 401", status)
	}

	// Alice is staff: op-login signs her in and the site accepts her.
	g.load("", "flow authentication op-login")
	if res := g.loginVia("op-login", "alice", "pw-alice"); res["type"] != "redirect" {
		t.Fatalf("alice through op-login: %v", res)
	}
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("alice on the pinned site: %d %v", status, hdr)
	}
}

// Finding 9: auth/verify applies the site's authorization policy.
func TestVerifyAppliesSitePolicy(t *testing.T) {
	g := startGateway(t, "", "policy staff-only")
	if res := g.login("bob", "pw-bob", "/"); res["type"] != "redirect" {
		t.Fatalf("bob login: %v", res)
	}
	if resp, _ := g.do("GET", "/inside", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on the site: %d, want 403", resp.StatusCode)
	}
	resp, body := g.do("GET", "/.flowgate/auth/verify", "")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Remote-User") != "" {
		t.Fatalf("bob through auth/verify: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	jar, _ := cookiejar.New(nil)
	g.tc.Client.Jar = jar
	g.login("alice", "pw-alice", "/")
	if resp, _ := g.do("GET", "/.flowgate/auth/verify", ""); resp.StatusCode != 200 || resp.Header.Get("Remote-User") != "alice" {
		t.Fatalf("alice through auth/verify: %d %v", resp.StatusCode, resp.Header)
	}
}

// Finding 10: a chunked POST whose trailers carry an identity header does not
// hand that header to the upstream.
func TestTrailersDoNotReachUpstream(t *testing.T) {
	// The upstream reads the body, then reports headers and trailers.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"body": string(b), "headers": r.Header, "trailers": r.Trailer})
	}))
	t.Cleanup(up.Close)
	g := &gateway{t: t, up: up, dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.load("", "")
	g.login("bob", "pw-bob", "/")
	var seen struct {
		Body     string      `json:"body"`
		Headers  http.Header `json:"headers"`
		Trailers http.Header `json:"trailers"`
	}
	req, _ := http.NewRequest("POST", base+"/submit", io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = -1 // chunked, so trailers can follow
	req.Trailer = http.Header{"Remote-User": {"admin"}, "Remote-Groups": {"admins"}, "X-Other": {"kept?"}}
	resp, err := g.tc.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil || resp.StatusCode != 200 {
		t.Fatalf("proxied chunked POST: %d %v", resp.StatusCode, err)
	}
	if seen.Body != "payload" || seen.Headers.Get("Remote-User") != "bob" {
		t.Fatalf("upstream saw body %q, Remote-User %q", seen.Body, seen.Headers.Get("Remote-User"))
	}
	for _, k := range []string{"Remote-User", "Remote-Groups"} {
		if v := seen.Trailers.Values(k); len(v) > 0 {
			t.Fatalf("client trailer %s: %v reached the upstream", k, v)
		}
	}
}

// Finding 1: with blueprints configured, the built-in flows are not installed
// (nor kept from an earlier start without blueprints), and operators can delete
// flows through the admin API.
func TestBuiltInsOnlyWithoutBlueprints(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	// First start without blueprints: built-ins are installed.
	g.load("", "")
	if resp, _ := g.do("GET", "/.flowgate/api/v1/flows/default-authentication/", ""); resp.StatusCode != 200 {
		t.Fatalf("built-in flow without blueprints: %d", resp.StatusCode)
	}
	// Now the operator configures a blueprint with their own flow.
	g.seed = filepath.Join(g.dir, "blueprints")
	if err := os.MkdirAll(g.seed, 0o700); err != nil {
		t.Fatal(err)
	}
	g.withBlueprint("op.yaml", opLogin)
	g.load("", "")
	for _, slug := range []string{"default-authentication", "default-invalidation"} {
		if resp, _ := g.do("GET", "/.flowgate/api/v1/flows/"+slug+"/", ""); resp.StatusCode != 404 {
			t.Fatalf("built-in %s with blueprints configured: %d, want 404", slug, resp.StatusCode)
		}
	}
	resp, _ := g.do("GET", "/.flowgate/default/authentication/", "")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.flowgate/flows/op-login/") {
		t.Fatalf("designation redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, body := adminDo(t, "DELETE", "/flowgate/flows/op-login", "", "")
	if status != 200 {
		t.Fatalf("delete flow: %d %s", status, body)
	}
	if resp, _ := g.do("GET", "/.flowgate/api/v1/flows/op-login/", ""); resp.StatusCode != 404 {
		t.Fatalf("deleted flow still served: %d", resp.StatusCode)
	}
	if status, _ := adminDo(t, "DELETE", "/flowgate/flows/op-login", "", ""); status != 404 {
		t.Fatalf("deleting it again: %d, want 404", status)
	}
}

// Finding 5 over HTTP: a flow cookie planted in the victim's browser stops
// working for the attacker as soon as the victim answers.
func TestPlantedFlowCookieIsUseless(t *testing.T) {
	g := startGateway(t, "", "")
	u, _ := url.Parse(base + "/.flowgate/")
	g.getJSON(apiFlow)
	var planted *http.Cookie
	for _, c := range g.tc.Client.Jar.Cookies(u) {
		if c.Name == "flowgate_flow" {
			planted = c
		}
	}
	if planted == nil {
		t.Fatal("no flow cookie")
	}
	attackerJar := g.tc.Client.Jar
	// The victim's browser holds the attacker's cookie and signs in.
	victimJar, _ := cookiejar.New(nil)
	victimJar.SetCookies(u, []*http.Cookie{{Name: planted.Name, Value: planted.Value, Path: "/.flowgate/"}})
	g.tc.Client.Jar = victimJar
	if _, ch := g.postJSON(apiFlow, map[string]string{"uid_field": "alice"}); stage(ch) != "password" {
		t.Fatalf("victim identification: %v", ch)
	}
	g.tc.Client.Jar = attackerJar
	if resp, body := g.postJSON(apiFlow, map[string]string{"password": "guess"}); resp.StatusCode != http.StatusGone {
		t.Fatalf("attacker continuing the planted execution: %d %v", resp.StatusCode, body)
	}
	g.tc.Client.Jar = victimJar
	if _, res := g.postJSON(apiFlow, map[string]string{"password": "pw-alice"}); res["type"] != "redirect" {
		t.Fatalf("victim password: %v", res)
	}
	if g.sessionCookie() == nil {
		t.Fatal("victim got no session")
	}
}

// Finding 6: a reload does not undo a password change made after the seed.
func TestReloadKeepsChangedPassword(t *testing.T) {
	g := startGateway(t, "", "")
	if status, body := adminDo(t, "PUT", "/flowgate/users/alice/password", `{"password":"new-secret-1"}`, "application/json"); status != 200 {
		t.Fatalf("change password: %d %s", status, body)
	}
	g.load("", "header_name X-Name") // a real config change, so Caddy reloads
	if res := g.login("alice", "pw-alice", "/"); res["type"] == "redirect" {
		t.Fatal("the seed's old password works again after a reload")
	}
	g.load("", "header_name X-Name2")
	if res := g.login("alice", "new-secret-1", "/"); res["type"] != "redirect" {
		t.Fatalf("the changed password after a reload: %v", res)
	}
}

// A store written before built-in flows were marked holds unmarked copies of
// them: once blueprints that do not define those slugs are configured, the
// copies identical to the built-ins go too; a blueprint's own copy stays.
func TestUnmarkedBuiltInCopiesAreRemoved(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir) // its flows.yaml is the built-in blueprint, unmarked
	g.withBlueprint("op.yaml", opLogin)
	g.load("", "")
	if resp, _ := g.do("GET", "/.flowgate/api/v1/flows/default-authentication/", ""); resp.StatusCode != 200 {
		t.Fatalf("the blueprint's own copy of default-authentication: %d", resp.StatusCode)
	}
	if err := os.Remove(filepath.Join(g.seed, "flows.yaml")); err != nil {
		t.Fatal(err)
	}
	g.load("", "header_name X-Name") // a changed config, or Caddy skips the load
	if resp, _ := g.do("GET", "/.flowgate/api/v1/flows/default-authentication/", ""); resp.StatusCode != 404 {
		t.Fatalf("an unmarked built-in copy with other blueprints configured: %d, want 404", resp.StatusCode)
	}
	resp, _ := g.do("GET", "/.flowgate/default/authentication/", "")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.flowgate/flows/op-login/") {
		t.Fatalf("designation redirect: %s", resp.Header.Get("Location"))
	}
}
