package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Multi-factor authentication through the running gateway: step-up per route,
// the shipped MFA flows, the account page's devices and the operators' routes.

// adminMFA is the site policy of the MFA tests: /admin needs staff and a
// second factor in the session; every other path is open to anyone signed in.
const adminMFA = `version: 1
policies:
  - name: admin-mfa
    rego: |
      package flowgate.admin_mfa
      import rego.v1
      default allow := false
      admin_path if startswith(input.request.path, "/admin")
      second_factor if {
        some m in input.user.auth_methods
        m in {"otp", "static", "webauthn"}
      }
      allow if not admin_path
      allow if {
        admin_path
        "staff" in input.user.groups
        second_factor
      }
      messages contains "Staff only." if {
        admin_path
        not "staff" in input.user.groups
      }
`

// totpStepUp is a step-up flow that needs no authenticator_validate: setting
// up an authenticator app records "otp", and user_login adds it to the session.
const totpStepUp = `version: 1
stages:
  - {name: enroll-totp, type: authenticator_totp}
  - {name: enroll-totp-login, type: user_login}
flows:
  - slug: totp-step-up
    name: TOTP step-up
    title: Add an authenticator app
    designation: authentication
    authentication: require_authenticated
    order: 100
    stages:
      - {stage: enroll-totp, order: 10}
      - {stage: enroll-totp-login, order: 20}
`

// totpCode is a TOTP code of a base32 secret from oathtool (an implementation
// independent of the gateway's), offset like "+30 seconds" or "" for now.
// Without oathtool the test is skipped, and fails under CI=true.
func totpCode(t testing.TB, secret, offset string) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("oathtool is not installed (CI=true): the TOTP tests need it (make test installs it)")
		}
		t.Skip("oathtool is not installed: skipping the TOTP test (apt-get install oathtool)")
	}
	args := []string{"--totp", "-b", secret}
	if offset != "" {
		args = append(args, "-N", "now "+offset)
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// needOathtool skips (fails under CI=true) before a test does anything.
func needOathtool(t *testing.T) {
	t.Helper()
	totpCode(t, "JBSWY3DPEHPK3PXP", "")
}

// mfaGateway starts a gateway with the demo users, the admin-mfa policy, the
// given extra blueprints, trusted proxies (for auth/verify) and the audit log
// in dir/audit.log, protecting the site with handlerBlock.
func mfaGateway(t *testing.T, handlerBlock string, blueprints map[string]string) *gateway {
	t.Helper()
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("admin-mfa.yaml", adminMFA)
	for name, doc := range blueprints {
		g.withBlueprint(name, doc)
	}
	cfg := g.config("", handlerBlock)
	cfg = strings.Replace(cfg, "\tgrace_period 1ns\n", "\tgrace_period 1ns\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/8 ::1\n\t}\n"+
		"\tlog audit {\n\t\tinclude flowgate.audit\n\t\toutput file "+filepath.Join(g.dir, "audit.log")+"\n\t\tformat json\n\t}\n", 1)
	g.tc = newTester(t)
	g.tc.InitServer(cfg, "caddyfile")
	g.tc.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return g
}

// shippedMFA is examples/blueprints/mfa.yaml.
func shippedMFA(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "blueprints", "mfa.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const browser = "Accept: text/html,application/xhtml+xml" // a browser navigation

// totpSetup answers an authenticator_totp challenge at api with the current
// code and returns the secret and the answer.
func (g *gateway) totpSetup(api string, ch map[string]any) (string, map[string]any) {
	g.t.Helper()
	if stage(ch) != "authenticator_totp" {
		g.t.Fatalf("want the authenticator app setup: %v", ch)
	}
	data, _ := ch["data"].(map[string]any)
	secret, _ := data["secret"].(string)
	if secret == "" || !strings.HasPrefix(data["otpauth_url"].(string), "otpauth://totp/") {
		g.t.Fatalf("setup data: %v", data)
	}
	_, res := g.postJSON(api, map[string]string{"code": totpCode(g.t, secret, "")})
	return secret, res
}

// A password-only session meets a route that needs a second factor: the
// browser goes through the step-up flow and back, an API client is told where
// to go, a denial for another reason stays a 403, and after the step-up the
// same browser, with a new session of the same user holding both methods,
// passes; the original (pinned) flow's sessions are still what the site takes.
func TestMFAStepUp(t *testing.T) {
	needOathtool(t)
	g := mfaGateway(t, "\t\tpolicy admin-mfa\n\t\tstep_up totp-step-up\n\t\tflow authentication default-authentication",
		map[string]string{"step-up.yaml": totpStepUp})
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice signs in: %v", res)
	}
	stepUp := "/.flowgate/flows/totp-step-up/?next=%2Fadmin%2Fusers%3Fpage%3D2"
	resp, _ := g.do("GET", "/admin/users?page=2", "", browser)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != stepUp {
		t.Fatalf("password only, browser: %d %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), stepUp)
	}
	if status, hdr := g.upstreamHeaders("/reports", browser); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("password only, another path: %d", status)
	}
	resp, body := g.do("GET", "/admin/users?page=2", "", "Accept: application/json")
	if m := decode(t, body); resp.StatusCode != http.StatusUnauthorized || m["type"] != "step_up" || m["to"] != stepUp ||
		resp.Header.Get("Location") != stepUp || m["message"] == "" {
		t.Fatalf("password only, API client: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Forward auth asks the same question: a 401 naming the step-up, back to
	// the forwarded request.
	fwd := []string{"X-Forwarded-Method: GET", "X-Forwarded-Proto: http", "X-Forwarded-Host: localhost:9080", "X-Forwarded-Uri: /admin/x"}
	resp, body = g.do("GET", verifyPath, "", append(fwd, "Accept: application/json")...)
	if want := "/.flowgate/flows/totp-step-up/?next=%2Fadmin%2Fx"; resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("Location") != want || decode(t, body)["to"] != want {
		t.Fatalf("auth/verify: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	// The step-up (here: setting up an authenticator app, which records otp).
	before := g.sessionCookie()
	api := "/.flowgate/api/v1/flows/totp-step-up/?next=" + url.QueryEscape("/admin/users?page=2")
	_, ch := g.getJSON(api)
	_, res := g.totpSetup("/.flowgate/api/v1/flows/totp-step-up/", ch)
	if res["type"] != "redirect" || res["to"] != "/admin/users?page=2" {
		t.Fatalf("step-up: %v", res)
	}
	after := g.sessionCookie()
	if after == nil || after.Value == before.Value {
		t.Fatal("the step-up did not rotate the session")
	}
	if status, hdr := g.upstreamHeaders("/admin/users?page=2", browser); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("after the step-up: %d %v", status, hdr)
	}
	if resp, _ := g.do("GET", verifyPath, "", fwd...); resp.StatusCode != 200 || resp.Header.Get("Remote-User") != "alice" {
		t.Fatalf("auth/verify after the step-up: %d", resp.StatusCode)
	}
	sessions := adminSessions(t, "alice")
	if len(sessions) != 1 {
		t.Fatalf("alice has %d sessions, want 1 (the old one replaced): %v", len(sessions), sessions)
	}
	if m := toStrings(sessions[0]["auth_methods"]); !slices.Contains(m, "pwd") || !slices.Contains(m, "otp") {
		t.Fatalf("session methods %v, want pwd and otp", m)
	}
	// The old cookie is worth nothing now.
	jar := g.freshJar()
	resp, _ = g.do("GET", "/reports", "", "Cookie: flowgate_session="+before.Value, "Accept: application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the replaced session's cookie: %d, want 401", resp.StatusCode)
	}

	// Bob is no staff member: no second factor would let him in, so a 403
	// (and its message), not a step-up, whether he asks as a browser or not.
	if res := g.login("bob", "pw-bob", "/"); res["type"] != "redirect" {
		t.Fatalf("bob signs in: %v", res)
	}
	resp, body = g.do("GET", "/admin/users", "", browser)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" || !strings.Contains(body, "Staff only.") {
		t.Fatalf("bob, browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body = g.do("GET", "/admin/users", "", "Accept: application/json"); resp.StatusCode != http.StatusForbidden || decode(t, body)["type"] != "denied" {
		t.Fatalf("bob, API client: %d %s", resp.StatusCode, body)
	}
	if resp, _ := g.do("GET", verifyPath, "", append(fwd, "Accept: application/json")...); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob, auth/verify: %d, want 403", resp.StatusCode)
	}
	g.tc.Client.Jar = jar

	// Without step_up, the same password-only session is a plain 403.
	g.load("", "\t\tpolicy admin-mfa")
	g.freshJar()
	g.login("alice", "pw-alice", "/")
	if resp, _ := g.do("GET", "/admin", "", browser); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without step_up: %d, want 403", resp.StatusCode)
	}
}

// step_up naming no flow fails the config load, and needs a policy.
func TestMFAStepUpMustNameAFlow(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(bp, []byte(adminMFA), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ block, want string }{
		{"policy admin-mfa\n\t\tstep_up nope", "step_up nope: no flow with that slug"},
		{"step_up default-authentication", "step_up default-authentication: needs a policy"},
	} {
		src := "{\n\tadmin off\n\tflowgate {\n\t\tstorage memory\n\t\tblueprints " + bp + "\n\t}\n}\n:9999 {\n\tflowgate {\n\t\t" + tc.block + "\n\t}\n}\n"
		out, err := adapt(t, "Caddyfile", src)
		if err != nil {
			t.Fatal(err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: validate says %v, want %q", tc.block, err, tc.want)
		}
	}
	if _, err := adapt(t, "Caddyfile", ":9999 {\n\tflowgate {\n\t\tstep_up\n\t}\n}\n"); err == nil {
		t.Fatal("step_up without a slug adapted")
	}
}

var (
	accountCSRF   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	accountDevice = regexp.MustCompile(`name="device" value="([^"]+)"`)
)

// A device set up through the shipped setup flow shows on the account page
// (never its secret) and on the admin API and CLI. Its Remove button needs a
// session that proved a second factor, the page's token and this site; a
// removal is audited. Adding a device needs the one already set up. Operators
// reset one device or all.
func TestMFADevicesAccountPageAndAdmin(t *testing.T) {
	needOathtool(t)
	g := mfaGateway(t, "", map[string]string{"mfa.yaml": shippedMFA(t)})
	g.login("alice", "pw-alice", "/")
	resp, page := g.do("GET", "/.flowgate/account", "", browser)
	mustContain(t, "account page before setup", page,
		`href="/.flowgate/flows/default-authenticator-totp-setup/?next=%2F.flowgate%2Faccount">Set up an authenticator app</a>`,
		`href="/.flowgate/flows/default-authenticator-webauthn-setup/?next=%2F.flowgate%2Faccount">Add a passkey or security key</a>`,
		`href="/.flowgate/flows/default-authenticator-static-setup/?next=%2F.flowgate%2Faccount">Create recovery codes</a>`)
	// No password change flow here: the setup flows are not offered as one.
	if resp.StatusCode != 200 || strings.Contains(page, "Second factors") || strings.Contains(page, "Change password") {
		t.Fatalf("account page before setup: %d\n%s", resp.StatusCode, page)
	}

	// The first device needs nothing more than the session.
	setup := "/.flowgate/api/v1/flows/default-authenticator-totp-setup/"
	_, ch := g.getJSON(setup + "?next=%2F.flowgate%2Faccount")
	secret, res := g.totpSetup(setup, ch)
	if res["type"] != "redirect" || res["to"] != "/.flowgate/account" {
		t.Fatalf("setup: %v", res)
	}
	status, body := adminDo(t, "GET", "/flowgate/users/alice/mfa", "", "")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); status != 200 || err != nil || len(list) != 1 ||
		list[0]["class"] != "totp" || list[0]["name"] != "Authenticator app" || list[0]["id"] == "" || list[0]["created_at"] == nil {
		t.Fatalf("admin list: %d %s", status, body)
	}
	if strings.Contains(body, secret) || strings.Contains(body, "secret") {
		t.Fatalf("admin list shows a secret: %s", body)
	}
	id := list[0]["id"].(string)
	out, err := runCLI(t, "", "--address", "localhost:2999", "user", "mfa", "list", "alice")
	if err != nil || !containsFields(out, []string{"ID", "CLASS", "NAME", "CREATED", "LAST", "USED"}) || !strings.Contains(out, id) || !strings.Contains(out, "totp") {
		t.Fatalf("CLI list: %v\n%s", err, out)
	}

	// A password-only session sees the device but cannot remove it.
	_, page = g.do("GET", "/.flowgate/account", "", browser)
	mustContain(t, "account page, password only", page, "Second factors", "<strong>Authenticator app</strong> · Authenticator app",
		"last used never", "To remove a device, sign in with a second factor first.")
	if strings.Contains(page, secret) || strings.Contains(page, `name="action"`) {
		t.Fatalf("account page, password only: a secret or a Remove button\n%s", page)
	}
	remove := func(token string, headers ...string) (*http.Response, string) {
		return g.do("POST", "/.flowgate/account", form("csrf_token", token, "action", "remove_device", "device", id),
			append([]string{formType}, headers...)...)
	}
	// The page shows no form; a forged one is refused all the same.
	if resp, _ := remove("forged"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}

	// Signing in again with the second factor (mfa-authentication asks for a
	// code now) upgrades this browser's session.
	api := "/.flowgate/api/v1/flows/mfa-authentication/"
	g.getJSON(api + "?next=%2F.flowgate%2Faccount")
	g.postJSON(api, map[string]string{"uid_field": "alice"})
	if _, ch := g.postJSON(api, map[string]string{"password": "pw-alice"}); stage(ch) != "authenticator_validate" {
		t.Fatalf("mfa-authentication after the password: %v", ch)
	}
	if _, res := g.postJSON(api, map[string]string{"code": totpCode(t, secret, "+30 seconds")}); res["type"] != "redirect" {
		t.Fatalf("mfa-authentication: %v", res)
	}
	_, page = g.do("GET", "/.flowgate/account", "", browser)
	mustContain(t, "account page", page, `name="action" value="remove_device"`, `name="device" value="`+id+`"`, "last used 20")
	token := accountCSRF.FindStringSubmatch(page)[1]
	if resp, _ := remove(token, "Origin: http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site: %d", resp.StatusCode)
	}
	// Another browser's password-only session, sent this session's token:
	// refused (the token is bound to its session: see account_test.go).
	jar := g.freshJar()
	g.login("alice", "pw-alice", "/")
	if resp, body := remove(token); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session with this session's token: %d %s", resp.StatusCode, body)
	}
	g.tc.Client.Jar = jar
	if _, body := adminDo(t, "GET", "/flowgate/users/alice/mfa", "", ""); !strings.Contains(body, id) {
		t.Fatalf("a refused removal removed the device: %s", body)
	}
	if resp, _ := remove(token); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.flowgate/account" {
		t.Fatalf("remove: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, body := adminDo(t, "GET", "/flowgate/users/alice/mfa", "", ""); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("after removal: %d %s", status, body)
	}
	_, page = g.do("GET", "/.flowgate/account", "", browser)
	if accountDevice.MatchString(page) || strings.Contains(page, "Second factors") {
		t.Fatalf("the removed device is still listed:\n%s", page)
	}
	var audited bool
	for _, e := range auditEntries(t, filepath.Join(g.dir, "audit.log")) {
		if e["event"] == "device_removed" && e["user"] == "alice" && e["device"] == id && e["class"] == "totp" && e["via"] == "account" {
			audited = true
		}
	}
	if !audited {
		t.Fatal("no device_removed audit entry")
	}

	// Two new devices: the second needs a code of the first.
	_, ch = g.getJSON(setup + "?next=%2F")
	first, _ := g.totpSetup(setup, ch)
	_, ch = g.getJSON(setup + "?next=%2F")
	if stage(ch) != "authenticator_validate" {
		t.Fatalf("adding a second device without proving the first: %v", ch)
	}
	_, ch = g.postJSON(setup, map[string]string{"code": totpCode(t, first, "+30 seconds")})
	if _, res := g.totpSetup(setup, ch); res["type"] != "redirect" {
		t.Fatalf("second device: %v", res)
	}
	status, body = adminDo(t, "GET", "/flowgate/users/alice/mfa", "", "")
	list = nil
	if json.Unmarshal([]byte(body), &list); len(list) != 2 {
		t.Fatalf("two devices: %d %s", status, body)
	}

	// Operators: reset one device, then all of them.
	one := list[0]["id"].(string)
	if out, err := runCLI(t, "", "--address", "localhost:2999", "user", "mfa", "reset", "alice", "--device", one); err != nil || !strings.Contains(out, one) {
		t.Fatalf("CLI reset --device: %v %s", err, out)
	}
	if status, body := adminDo(t, "DELETE", "/flowgate/users/alice/mfa/"+one, "", ""); status != 404 {
		t.Fatalf("removing a removed device: %d %s", status, body)
	}
	if status, body := adminDo(t, "DELETE", "/flowgate/users/alice/mfa", "", ""); status != 200 || !strings.Contains(body, `"removed":["`) {
		t.Fatalf("reset: %d %s", status, body)
	}
	if status, body := adminDo(t, "GET", "/flowgate/users/alice/mfa", "", ""); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("after reset: %d %s", status, body)
	}
	if out, err := runCLI(t, "", "--address", "localhost:2999", "user", "mfa", "list", "alice"); err != nil || !strings.Contains(out, "no devices") {
		t.Fatalf("CLI list after reset: %v %s", err, out)
	}
	if status, _ := adminDo(t, "GET", "/flowgate/users/nobody/mfa", "", ""); status != 404 {
		t.Fatalf("unknown user: %d", status)
	}
}

// The shipped mfa-authentication flow with an authenticator app: a user
// without a second factor sets one up after the password (choosing the app
// over a passkey), and the next sign-in asks for a code, which works once.
func TestMFAAuthenticationTOTP(t *testing.T) {
	needOathtool(t)
	g := mfaGateway(t, "\t\tflow authentication mfa-authentication", map[string]string{"mfa.yaml": shippedMFA(t)})
	api := "/.flowgate/api/v1/flows/mfa-authentication/"
	signIn := func() map[string]any {
		t.Helper()
		g.getJSON(api + "?next=%2Fhome")
		g.postJSON(api, map[string]string{"uid_field": "alice"})
		_, ch := g.postJSON(api, map[string]string{"password": "pw-alice"})
		return ch
	}
	ch := signIn()
	if stage(ch) == "authenticator_validate" {
		// Two configuration stages: the user picks one.
		var choice string
		for _, f := range ch["fields"].([]any) {
			for _, c := range f.(map[string]any)["choices"].([]any) {
				if v := c.(map[string]any)["value"].(string); strings.Contains(v, "totp") {
					choice = v
				}
			}
		}
		if choice == "" {
			t.Fatalf("no authenticator app among the choices: %v", ch)
		}
		_, ch = g.postJSON(api, map[string]string{"stage": choice})
	}
	secret, res := g.totpSetup(api, ch)
	if res["type"] != "redirect" || res["to"] != "/home" {
		t.Fatalf("first sign-in: %v", res)
	}
	if m := toStrings(adminSessions(t, "alice")[0]["auth_methods"]); !slices.Contains(m, "pwd") || !slices.Contains(m, "otp") {
		t.Fatalf("session methods %v", m)
	}

	// Another browser: the code is asked for now.
	g.freshJar()
	ch = signIn()
	if stage(ch) != "authenticator_validate" {
		t.Fatalf("second sign-in, after the password: %v", ch)
	}
	used := totpCode(t, secret, "")
	_, ch = g.postJSON(api, map[string]string{"code": used})
	if ch["type"] != "challenge" || g.sessionCookie() != nil {
		t.Fatalf("the setup's code again (a replay): %v", ch)
	}
	_, res = g.postJSON(api, map[string]string{"code": totpCode(t, secret, "+30 seconds")})
	if res["type"] != "redirect" || res["to"] != "/home" {
		t.Fatalf("a fresh code: %v", res)
	}
	if status, hdr := g.upstreamHeaders("/home", browser); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("signed in with a second factor: %d", status)
	}
}

// readmeMFAPolicy is the yaml block of README.md's Multi-factor
// authentication section (the admin-second-factor policy).
func readmeMFAPolicy(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Multi-factor authentication\n")
	if !ok {
		t.Fatal("README.md has no Multi-factor authentication section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("README.md's Multi-factor authentication section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// The shipped step-up-mfa flow with the README's policy: a password-only
// session is sent through it for /admin/; the code spent at setup is refused
// there (a replay, through the JSON API), a fresh one passes (through the HTML
// form) and the same browser reaches /admin/.
func TestMFAStepUpShippedFlow(t *testing.T) {
	needOathtool(t)
	g := mfaGateway(t, "\t\tpolicy admin-second-factor\n\t\tstep_up step-up-mfa",
		map[string]string{"mfa.yaml": shippedMFA(t), "readme-mfa.yaml": readmeMFAPolicy(t)})
	g.login("alice", "pw-alice", "/")
	setup := "/.flowgate/api/v1/flows/default-authenticator-totp-setup/"
	_, ch := g.getJSON(setup + "?next=%2F")
	secret, _ := g.totpSetup(setup, ch)
	spent := totpCode(t, secret, "")

	if status, _ := g.upstreamHeaders("/reports", browser); status != 200 {
		t.Fatalf("password only, outside /admin/: %d", status)
	}
	resp, _ := g.do("GET", "/admin/", "", browser)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/.flowgate/flows/step-up-mfa/?next=%2Fadmin%2F" {
		t.Fatalf("password only: %d %q", resp.StatusCode, loc)
	}
	api := "/.flowgate/api/v1/flows/step-up-mfa/"
	_, ch = g.getJSON(api + "?next=%2Fadmin%2F")
	if stage(ch) != "authenticator_validate" {
		t.Fatalf("step-up: %v", ch)
	}
	_, ch = g.postJSON(api, map[string]string{"code": spent})
	if ch["type"] != "challenge" || stage(ch) != "authenticator_validate" {
		t.Fatalf("a replayed code: %v", ch)
	}
	if resp, _ := g.do("GET", "/admin/", "", browser); resp.StatusCode != http.StatusFound {
		t.Fatalf("after a refused code: %d, want still the step-up", resp.StatusCode)
	}
	// The same execution goes on in the HTML page (the browser's flow cookie).
	page := "/.flowgate/flows/step-up-mfa/"
	resp, body := g.formPost(page, page, "code", totpCode(t, secret, "+30 seconds"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("a fresh code in the HTML form: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if status, hdr := g.upstreamHeaders("/admin/", browser); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("after the step-up: %d", status)
	}
	// The device's last use is recorded and shown.
	_, body = adminDo(t, "GET", "/flowgate/users/alice/mfa", "", "")
	if !strings.Contains(body, `"last_used"`) {
		t.Fatalf("last_used not recorded: %s", body)
	}
}
