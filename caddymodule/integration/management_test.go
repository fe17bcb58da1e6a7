package integration

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine/store/redis/redistest"
)

// The operator's view through the admin API: user views with lock state and
// last login, session handles, PATCH, flow selection, and auth/verify behind
// other proxies.

// adminUser fetches one user's view.
func adminUser(t *testing.T, name string) map[string]any {
	t.Helper()
	status, body := adminDo(t, "GET", "/flowgate/users/"+url.PathEscape(name), "", "")
	if status != 200 {
		t.Fatalf("GET user %s: %d %s", name, status, body)
	}
	return decode(t, body)
}

// adminUsers lists the users by username.
func adminUsers(t *testing.T) map[string]map[string]any {
	t.Helper()
	status, body := adminDo(t, "GET", "/flowgate/users", "", "")
	var list []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("list users: %d %s", status, body)
	}
	out := map[string]map[string]any{}
	for _, u := range list {
		out[u["username"].(string)] = u
	}
	return out
}

// adminSessions lists a user's sessions.
func adminSessions(t *testing.T, name string) []map[string]any {
	t.Helper()
	status, body := adminDo(t, "GET", "/flowgate/users/"+name+"/sessions", "", "")
	var list []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("sessions of %s: %d %s", name, status, body)
	}
	return list
}

// Seed users from blueprints get a real creation time (MergeSeedUser sets it),
// shown by the admin API.
func TestAdminSeedUserCreatedAt(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	startGateway(t, "", "")
	for name, u := range adminUsers(t) {
		raw, _ := u["created_at"].(string)
		created, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil || created.IsZero() || created.Before(start) || created.After(time.Now().Add(time.Minute)) {
			t.Errorf("seed user %s: created_at %q, want the time of the config load", name, raw)
		}
	}
	if got := adminUser(t, "alice")["created_at"]; got == "0001-01-01T00:00:00Z" {
		t.Errorf("GET alice: created_at %v", got)
	}
}

// Users show whether regulation locks them now and when they last signed in.
func TestAdminUserLockedAndLastLogin(t *testing.T) {
	g := startGateway(t, "", "")
	users := adminUsers(t)
	for _, name := range []string{"alice", "bob"} {
		u := users[name]
		if u["locked"] != false {
			t.Errorf("%s: locked %v before any failure", name, u["locked"])
		}
		if _, ok := u["last_login"]; ok {
			t.Errorf("%s: last_login %v before any login", name, u["last_login"])
		}
	}

	before := time.Now().Add(-time.Second)
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice login: %v", res)
	}
	for _, u := range []map[string]any{adminUser(t, "alice"), adminUsers(t)["alice"]} {
		raw, _ := u["last_login"].(string)
		last, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil || last.Before(before) || last.After(time.Now().Add(time.Second)) {
			t.Fatalf("alice after login: last_login %q", raw)
		}
	}
	// A login records itself without changing anything else about the user.
	if status, hdr := g.upstreamHeaders("/"); status != 200 || hdr.Get("Remote-Groups") != "staff" {
		t.Fatalf("alice after login: %d %v", status, hdr)
	}

	// Five wrong passwords lock bob's account.
	for i := 0; i < 5; i++ {
		g.tc.Client.Jar, _ = cookiejar.New(nil)
		if res := g.login("bob", "wrong-password", "/"); res["type"] == "redirect" {
			t.Fatalf("wrong password signed in: %v", res)
		}
	}
	if got := adminUsers(t)["bob"]["locked"]; got != true {
		t.Fatalf("bob after five failures: locked %v", got)
	}
	if got := adminUser(t, "bob")["locked"]; got != true {
		t.Fatalf("GET bob: locked %v", got)
	}
	if got := adminUser(t, "alice")["locked"]; got != false {
		t.Fatalf("alice: locked %v", got)
	}
	if status, body := adminDo(t, "POST", "/flowgate/users/bob/unlock", "", ""); status != 200 {
		t.Fatalf("unlock: %d %s", status, body)
	}
	if got := adminUser(t, "bob")["locked"]; got != false {
		t.Fatalf("bob after unlock: locked %v", got)
	}
}

var handlePattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// One session can be revoked by its handle; the handle is not the session ID.
func TestAdminRevokeOneSession(t *testing.T) {
	g := startGateway(t, "", "")
	jars := make([]http.CookieJar, 2)
	cookies := make([]string, 2)
	for i := range jars {
		jars[i], _ = cookiejar.New(nil)
		g.tc.Client.Jar = jars[i]
		if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
			t.Fatalf("login %d: %v", i, res)
		}
		cookies[i] = g.sessionCookie().Value
	}
	list := adminSessions(t, "alice")
	if len(list) != 2 {
		t.Fatalf("two sessions listed: %v", list)
	}
	var handles []string
	for _, s := range list {
		h, _ := s["handle"].(string)
		if !handlePattern.MatchString(h) {
			t.Fatalf("handle %q: want 16 hex characters", h)
		}
		for _, c := range cookies {
			if strings.Contains(c, h) {
				t.Fatalf("handle %q is part of a session cookie", h)
			}
		}
		if _, ok := s["id"]; ok {
			t.Fatalf("a session ID is listed: %v", s)
		}
		handles = append(handles, h)
	}
	if handles[0] == handles[1] {
		t.Fatalf("two sessions, one handle: %v", handles)
	}
	var again []string
	for _, s := range adminSessions(t, "alice") {
		again = append(again, s["handle"].(string))
	}
	if !slices.Equal(handles, again) {
		t.Fatalf("handles changed between listings: %v, then %v", handles, again)
	}

	if status, body := adminDo(t, "DELETE", "/flowgate/users/alice/sessions/"+handles[0], "", ""); status != 200 || !strings.Contains(body, handles[0]) {
		t.Fatalf("revoke one: %d %s", status, body)
	}
	left := adminSessions(t, "alice")
	if len(left) != 1 || left[0]["handle"] != handles[1] {
		t.Fatalf("after revoking %s: %v", handles[0], left)
	}
	// Exactly one of the two browsers is still signed in.
	var working int
	for _, jar := range jars {
		g.tc.Client.Jar = jar
		switch status, _ := g.upstreamHeaders("/"); status {
		case 200:
			working++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("after revoking one session: %d", status)
		}
	}
	if working != 1 {
		t.Fatalf("%d sessions work after revoking one of two", working)
	}

	for _, path := range []string{
		"/flowgate/users/alice/sessions/" + handles[0], // already revoked
		"/flowgate/users/alice/sessions/0123456789abcdef",
		"/flowgate/users/bob/sessions/" + handles[1], // alice's, not bob's
		"/flowgate/users/nobody/sessions/" + handles[1],
	} {
		if status, body := adminDo(t, "DELETE", path, "", ""); status != 404 {
			t.Errorf("DELETE %s: %d %s, want 404", path, status, body)
		}
	}
	if len(adminSessions(t, "alice")) != 1 {
		t.Fatal("a refused revoke removed a session")
	}
	// Revoking all still works.
	if status, _ := adminDo(t, "DELETE", "/flowgate/users/alice/sessions", "", ""); status != 200 {
		t.Fatalf("revoke all: %d", status)
	}
	if left := adminSessions(t, "alice"); len(left) != 0 {
		t.Fatalf("after revoking all: %v", left)
	}
}

// PATCH changes only the fields given, refuses bad input, and deactivating
// ends the user's sessions. The audit entry names the fields, not the values.
func TestAdminPatchUser(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	auditLog := filepath.Join(g.dir, "audit.log")
	cfg := g.config("", "")
	cfg = strings.Replace(cfg, "\tgrace_period 1ns\n", "\tgrace_period 1ns\n\tlog audit {\n\t\tinclude flowgate.audit\n\t\toutput file "+auditLog+"\n\t\tformat json\n\t}\n", 1)
	g.tc = newTester(t)
	g.tc.InitServer(cfg, "caddyfile")
	g.tc.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice login: %v", res)
	}
	patch := func(name, body string) (int, map[string]any) {
		t.Helper()
		status, out := adminDo(t, "PATCH", "/flowgate/users/"+name, body, "application/json")
		if status != 200 {
			return status, nil
		}
		return status, decode(t, out)
	}

	status, u := patch("alice", `{"name": "Alice Liddell", "groups": ["staff", "ops"]}`)
	if status != 200 || u["name"] != "Alice Liddell" || u["email"] != "alice@example.com" || u["is_active"] != true ||
		strings.Join(toStrings(u["groups"]), ",") != "staff,ops" || u["locked"] != false {
		t.Fatalf("patch name and groups: %d %v", status, u)
	}
	if got := adminUser(t, "alice"); got["name"] != "Alice Liddell" || got["email"] != "alice@example.com" {
		t.Fatalf("stored after patch: %v", got)
	}
	// The signed-in user's identity follows at once (the cache is dropped).
	if status, hdr := g.upstreamHeaders("/"); status != 200 || hdr.Get("Remote-Groups") != "staff,ops" || hdr.Get("Remote-Name") != "Alice Liddell" {
		t.Fatalf("identity after patch: %d %v", status, hdr)
	}
	if status, u := patch("alice", `{"email": " alice.liddell@example.com "}`); status != 200 || u["email"] != "alice.liddell@example.com" {
		t.Fatalf("patch email: %d %v", status, u)
	}
	if status, u := patch("alice", `{}`); status != 200 || u["name"] != "Alice Liddell" {
		t.Fatalf("empty patch: %d %v", status, u)
	}

	for _, tc := range []struct {
		name, user, body string
		want             int
	}{
		{"email of another user", "alice", `{"email": "BOB@example.com"}`, 409},
		{"not an address", "alice", `{"email": "not an address"}`, 400},
		{"display name in email", "alice", `{"email": "Alice <a@example.com>"}`, 400},
		{"unknown key", "alice", `{"password": "x"}`, 400},
		{"username is not patchable", "alice", `{"username": "mallory"}`, 400},
		{"wrong type", "alice", `{"is_active": "no"}`, 400},
		{"not JSON", "alice", `name=x`, 400},
		{"unknown user", "nobody", `{"name": "x"}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _ := patch(tc.user, tc.body); status != tc.want {
				t.Fatalf("%s: %d, want %d", tc.body, status, tc.want)
			}
		})
	}
	if got := adminUser(t, "alice"); got["email"] != "alice.liddell@example.com" || got["name"] != "Alice Liddell" {
		t.Fatalf("a refused patch changed alice: %v", got)
	}

	// Deactivating ends her sessions in the store, not only their use.
	if status, u := patch("alice", `{"is_active": false}`); status != 200 || u["is_active"] != false {
		t.Fatalf("deactivate: %d %v", status, u)
	}
	if status, _ := g.upstreamHeaders("/"); status != http.StatusUnauthorized {
		t.Fatalf("deactivated user's session: %d", status)
	}
	if left := adminSessions(t, "alice"); len(left) != 0 {
		t.Fatalf("sessions after deactivation: %v", left)
	}
	if status, _ := patch("alice", `{"is_active": true}`); status != 200 {
		t.Fatalf("reactivate: %d", status)
	}
	if status, _ := g.upstreamHeaders("/"); status != http.StatusUnauthorized {
		t.Fatalf("reactivation revived an ended session: %d", status)
	}

	var changes [][]string
	for _, e := range auditEntries(t, auditLog) {
		if e["event"] != "user_changed" {
			continue
		}
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), "Liddell") || strings.Contains(string(raw), `"ops"`) {
			t.Errorf("audit entry carries a value: %s", raw)
		}
		if e["user"] != "alice" || e["via"] != "admin_api" {
			t.Errorf("audit entry: %s", raw)
		}
		changes = append(changes, toStrings(e["fields"]))
	}
	want := [][]string{{"name", "groups"}, {"email"}, {"is_active"}, {"is_active"}}
	if !slices.EqualFunc(changes, want, slices.Equal) {
		t.Fatalf("user_changed entries: %v, want %v", changes, want)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// The flow list marks built-in flows and the flow each designation selects.
func TestAdminFlowsSelectedAndBuiltIn(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.load("", "") // no blueprints: the built-in flows
	flows := func() map[string]map[string]any {
		t.Helper()
		status, body := adminDo(t, "GET", "/flowgate/flows", "", "")
		var list []map[string]any
		if status != 200 || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("list flows: %d %s", status, body)
		}
		out := map[string]map[string]any{}
		for _, f := range list {
			out[f["slug"].(string)] = f
		}
		return out
	}
	got := flows()
	for _, slug := range []string{"default-authentication", "default-invalidation"} {
		if f := got[slug]; f["builtin"] != true || f["selected"] != true {
			t.Fatalf("%s without blueprints: %v", slug, f)
		}
	}
	// An operator's flow outranks the built-in one, whatever its order.
	if status, body := adminDo(t, "POST", "/flowgate/import?name=op.yaml", opLogin, "application/yaml"); status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	got = flows()
	if f := got["op-login"]; f["builtin"] != false || f["selected"] != true {
		t.Fatalf("op-login: %v", f)
	}
	if f := got["default-authentication"]; f["builtin"] != true || f["selected"] != false {
		t.Fatalf("default-authentication next to op-login: %v", f)
	}
	if f := got["default-invalidation"]; f["selected"] != true {
		t.Fatalf("default-invalidation: %v", f)
	}
	// It is the flow the designation sends a visitor to.
	resp, _ := g.do("GET", "/.flowgate/default/authentication/", "")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.flowgate/flows/op-login/") {
		t.Fatalf("designation redirect: %s", resp.Header.Get("Location"))
	}
}

// pathPolicy denies by the request's path, method and host, to show which
// request auth/verify judges.
const pathPolicy = `version: 1
policies:
  - name: no-admin-paths
    rego: |
      package flowgate.no_admin_paths
      import rego.v1
      default allow := false
      allow if {
        not startswith(input.request.path, "/admin")
        input.request.method != "DELETE"
        input.request.host != "blocked.example.com"
      }
      messages contains "Not here." if not allow
`

// verifyGateway starts a gateway whose site policy is pathPolicy; trusted
// makes the test client's address (loopback) a trusted proxy.
func verifyGateway(t *testing.T, trusted bool) *gateway {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("paths.yaml", pathPolicy)
	cfg := g.config("", "policy no-admin-paths")
	if trusted {
		cfg = strings.Replace(cfg, "\tgrace_period 1ns\n", "\tgrace_period 1ns\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/8 ::1\n\t}\n", 1)
	}
	g.tc = newTester(t)
	g.tc.InitServer(cfg, "caddyfile")
	g.tc.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return g
}

const verifyPath = "/.flowgate/auth/verify"

// From a trusted proxy, auth/verify judges the forwarded request and sends
// browsers back to it after login.
func TestVerifyForwardedFromTrustedProxy(t *testing.T) {
	g := verifyGateway(t, true)
	uri := "/private/page?x=1&y=two"
	loginOn := func(prefix string) string {
		return prefix + "/.flowgate/default/authentication/?next=" + url.QueryEscape(uri)
	}
	fwd := func(method, proto, host, uri string) []string {
		return []string{"X-Forwarded-Method: " + method, "X-Forwarded-Proto: " + proto, "X-Forwarded-Host: " + host, "X-Forwarded-Uri: " + uri}
	}
	browser := "Accept: text/html,application/xhtml+xml"

	// Another host: an absolute login URL on it, with the scheme it was asked on.
	resp, _ := g.do("GET", verifyPath, "", append(fwd("GET", "https", "app.example.com", uri), browser)...)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != loginOn("https://app.example.com") {
		t.Fatalf("browser, other host: %d %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), loginOn("https://app.example.com"))
	}
	// An API client gets the same URL in the 401.
	resp, body := g.do("GET", verifyPath, "", append(fwd("GET", "https", "app.example.com", uri), "Accept: application/json")...)
	if resp.StatusCode != http.StatusUnauthorized || decode(t, body)["login_url"] != loginOn("https://app.example.com") {
		t.Fatalf("API client, other host: %d %s", resp.StatusCode, body)
	}
	// A browser's POST is not a navigation: 401.
	if resp, _ := g.do("GET", verifyPath, "", append(fwd("POST", "https", "app.example.com", uri), browser)...); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forwarded POST: %d, want 401", resp.StatusCode)
	}
	// The same host as auth/verify's: a path.
	resp, _ = g.do("GET", verifyPath, "", append(fwd("GET", "http", "localhost:9080", uri), browser)...)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != loginOn("") {
		t.Fatalf("browser, same host: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), loginOn(""))
	}
	// Malformed values are ignored one by one.
	resp, _ = g.do("GET", verifyPath, "", "X-Forwarded-Host: evil.example.com/x?", "X-Forwarded-Uri: no-slash", browser)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/.flowgate/default/authentication/" {
		t.Fatalf("malformed forwarded headers: %d %q", resp.StatusCode, loc)
	}

	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice login: %v", res)
	}
	for _, tc := range []struct {
		name                    string
		method, proto, host, to string
		want                    int
	}{
		{"allowed path", "GET", "http", "app.example.com", "/public?q=1", 200},
		{"denied path", "GET", "http", "app.example.com", "/admin/users", 403},
		{"denied method", "DELETE", "http", "app.example.com", "/public", 403},
		{"denied host", "GET", "http", "blocked.example.com", "/public", 403},
		// The visitor's request was https, this hop plain http: the session
		// cookie the flow pages set over this hop still counts.
		{"https original", "GET", "https", "app.example.com", "/public", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do("GET", verifyPath, "", fwd(tc.method, tc.proto, tc.host, tc.to)...)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if user := resp.Header.Get("Remote-User"); (tc.want == 200) != (user == "alice") {
				t.Fatalf("Remote-User %q with status %d", user, resp.StatusCode)
			}
		})
	}

	// A browser that signed in on https pages holds the __Host- cookie; it
	// counts when the original request was https, though this hop is plain.
	value := g.sessionCookie().Value
	for _, proto := range []string{"https", "http"} {
		req, _ := http.NewRequest("GET", base+verifyPath, nil)
		req.Header.Set("Cookie", "__Host-flowgate_session="+value)
		for _, h := range fwd("GET", proto, "app.example.com", "/public") {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]int{"https": 200, "http": http.StatusUnauthorized}[proto]
		if resp.StatusCode != want {
			t.Fatalf("__Host- cookie, original %s: %d, want %d", proto, resp.StatusCode, want)
		}
	}
}

// From a peer outside trusted_proxies, X-Forwarded-* change nothing: a client
// cannot have its request judged as another one, nor steer the login link.
func TestVerifyIgnoresForwardedFromUntrustedPeer(t *testing.T) {
	g := verifyGateway(t, false)
	fwd := []string{"X-Forwarded-Method: GET", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example.com", "X-Forwarded-Uri: /private"}
	resp, _ := g.do("GET", verifyPath, "", append(fwd, "Accept: text/html")...)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/.flowgate/default/authentication/" {
		t.Fatalf("untrusted browser: %d %q, want 302 to the plain login path", resp.StatusCode, loc)
	}
	resp, body := g.do("GET", verifyPath, "", fwd...)
	if resp.StatusCode != http.StatusUnauthorized || decode(t, body)["login_url"] != "/.flowgate/default/authentication/" {
		t.Fatalf("untrusted API client: %d %s", resp.StatusCode, body)
	}
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice login: %v", res)
	}
	// A forged path or host the policy denies is not what is judged.
	for _, h := range []string{"X-Forwarded-Uri: /admin/users", "X-Forwarded-Host: blocked.example.com", "X-Forwarded-Method: DELETE"} {
		if resp, _ := g.do("GET", verifyPath, "", h); resp.StatusCode != 200 || resp.Header.Get("Remote-User") != "alice" {
			t.Fatalf("untrusted %s: %d", h, resp.StatusCode)
		}
	}
}

// go-redis's own log lines (here: dials to a Redis that is down) are entries
// of Caddy's structured log under the logger flowgate.redis, not plain text.
func TestRedisLogLinesAreStructured(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	logFile := filepath.Join(g.dir, "redis.log")
	cfg := redisConfig("localhost:2999", 9080, srv.Addr, "{fg-log}:", "", strings.TrimPrefix(g.up.URL, "http://"))
	cfg = strings.Replace(cfg, "\tgrace_period 1ns\n", "\tgrace_period 1ns\n\tlog redis {\n\t\tinclude flowgate.redis\n\t\toutput file "+logFile+"\n\t\tformat json\n\t}\n", 1)
	g.tc = newTester(t)
	g.tc.InitServer(cfg, "caddyfile")
	var entries []map[string]any
	if _, ok := within(5*time.Second, func() bool {
		entries = auditEntries(t, logFile)
		return len(entries) > 0
	}); !ok {
		t.Fatal("no flowgate.redis entry while Redis is down")
	}
	e := entries[0]
	if e["logger"] != "flowgate.redis" || e["level"] != "warn" || !strings.Contains(e["msg"].(string), "dial") {
		t.Fatalf("entry: %v", e)
	}
}

// nginx's auth_request takes only 2xx, 401 and 403: with ?mode=auth_request a
// browser without a session gets a 401 carrying the login URL in Location.
func TestVerifyAuthRequestMode(t *testing.T) {
	g := startGateway(t, "", "")
	resp, _ := g.do("GET", "/.flowgate/auth/verify?mode=auth_request", "", "Accept: text/html")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Location"), "/.flowgate/default/authentication/") {
		t.Fatalf("auth_request mode: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = g.do("GET", "/.flowgate/auth/verify", "", "Accept: text/html")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("forward-auth mode, browser: %d, want 302", resp.StatusCode)
	}
}
