package integration

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/flowgate/flowgate/caddymodule"
	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// authentikShared are the authentik exports every helper tests against;
// authentikOwn are the importer's own examples.
var (
	authentikShared = "../../flowengine/blueprint/authentik/testdata/shared"
	authentikOwn    = "../../flowengine/blueprint/authentik/testdata"
)

// runSplit runs a flowgate subcommand with stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := &cobra.Command{Use: "flowgate", SilenceUsage: true, SilenceErrors: true}
	caddymodule.BuildCommand(cmd)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func authentikFiles(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(authentikShared, "*.yaml"))
	if len(files) != 5 {
		t.Fatalf("%s has %d files, want the 5 authentik exports", authentikShared, len(files))
	}
	return files
}

// TestAuthentikCLI: validate and convert accept authentik files and print
// their warnings on stderr, naming the entry; convert's stdout stays a
// flowgate blueprint.
func TestAuthentikCLI(t *testing.T) {
	auth := filepath.Join(authentikShared, "flow-default-authentication-flow.yaml")
	out, errOut, err := runSplit(t, "validate", auth)
	if err != nil || strings.TrimSpace(out) != "valid" {
		t.Fatalf("validate: %v %s %s", err, out, errOut)
	}
	if !strings.Contains(errOut, "flow-default-authentication-flow.yaml:5: authentik_blueprints.metaapplyblueprint (entry 1): warning:") ||
		!strings.Contains(errOut, "(left-out)") {
		t.Errorf("validate warnings: %q", errOut)
	}
	captcha := filepath.Join(authentikOwn, "flows-login-conditional-captcha.yaml")
	out, errOut, err = runSplit(t, "convert", captcha, "--to", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, `authentik_stages_identification.identificationstage "default-authentication-identification": warning: settings left out, flowgate has no counterpart: template (unknown-setting)`) {
		t.Errorf("convert warnings: %q", errOut)
	}
	if _, err := blueprint.Parse("converted.yaml", []byte(out)); err != nil || !strings.HasPrefix(out, "version: 1") {
		t.Fatalf("convert output does not parse: %v\n%s", err, out)
	}
	// A binding to a stage flowgate does not have rejects the file.
	bad := filepath.Join(t.TempDir(), "duo.yaml")
	os.WriteFile(bad, []byte(`version: 1
entries:
  - {model: authentik_flows.flow, id: f, identifiers: {slug: duo}, attrs: {designation: authentication}}
  - {model: authentik_stages_authenticator_duo.authenticatorduostage, id: d, identifiers: {name: duo}}
  - {model: authentik_flows.flowstagebinding, identifiers: {target: !KeyOf f, stage: !KeyOf d, order: 1}}
`), 0o644)
	if _, _, err := runSplit(t, "validate", bad); err == nil || !strings.Contains(err.Error(), "duo.yaml:5: authentik_flows.flowstagebinding (entry 3): stage: flowgate has no stage like") {
		t.Fatalf("validate duo: %v", err)
	}
}

// convertAll writes each authentik file's conversion into dir, named to load
// after the built-in flows (which define stages of the same names).
func convertAll(t *testing.T, dir string, files []string) {
	t.Helper()
	for _, f := range files {
		out, _, err := runSplit(t, "convert", f, "--to", "yaml")
		if err != nil {
			t.Fatalf("convert %s: %v", f, err)
		}
		name := "zz-authentik-" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) + ".yaml"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func (g *gateway) challenge(path string, answer map[string]string) map[string]any {
	g.t.Helper()
	if answer == nil {
		_, m := g.getJSON(path)
		return m
	}
	_, m := g.postJSON(path, answer)
	return m
}

func (g *gateway) freshClient() {
	jar, _ := cookiejar.New(nil)
	g.tc.Client.Jar = jar
}

// TestAuthentikFlowsEndToEnd: the converted authentik flows, loaded through
// the blueprints option, sign a user in (past the default MFA validation,
// which skips a user without devices), change a password, enroll and log
// out through the JSON API; importing the authentik originals over the admin
// API then changes nothing, twice.
func TestAuthentikFlowsEndToEnd(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	files := authentikFiles(t)
	convertAll(t, g.seed, files)
	g.load("", "")

	// Sign in.
	const auth = "/.flowgate/api/v1/flows/default-authentication-flow/"
	if ch := g.challenge(auth+"?next=%2Finside", nil); stage(ch) != "identification" {
		t.Fatalf("first challenge: %v", ch)
	}
	if ch := g.challenge(auth, map[string]string{"uid_field": "bob@example.com"}); stage(ch) != "password" {
		t.Fatalf("after identification: %v", ch)
	}
	if res := g.challenge(auth, map[string]string{"password": "pw-bob"}); res["type"] != "redirect" || res["to"] != "/inside" {
		t.Fatalf("after password: %v", res)
	}
	if code, h := g.upstreamHeaders("/inside"); code != 200 || h.Get("Remote-User") != "bob" {
		t.Fatalf("signed in: %d %v", code, h)
	}

	// Change the password (the password policy is bound to the write stage).
	const change = "/.flowgate/api/v1/flows/default-password-change/"
	if ch := g.challenge(change, nil); stage(ch) != "prompt" {
		t.Fatalf("password change: %v", ch)
	}
	const newPW = "Staple-Battery-Horse-42"
	if res := g.challenge(change, map[string]string{"password": newPW, "password_repeat": newPW}); res["type"] != "redirect" {
		t.Fatalf("password change answer: %v", res)
	}

	// The TOTP setup flow asks the signed-in user for a code.
	if ch := g.challenge("/.flowgate/api/v1/flows/default-authenticator-totp-setup/", nil); stage(ch) != "authenticator_totp" {
		t.Fatalf("totp setup: %v", ch)
	}

	// Log out through the invalidation flow.
	if res := g.challenge("/.flowgate/api/v1/flows/default-invalidation-flow/", nil); res["type"] != "redirect" {
		t.Fatalf("logout: %v", res)
	}
	if code, _ := g.upstreamHeaders("/inside", "Accept: application/json"); code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", code)
	}
	g.freshClient()
	g.challenge(auth, nil)
	g.challenge(auth, map[string]string{"uid_field": "bob"})
	if res := g.challenge(auth, map[string]string{"password": "pw-bob"}); res["type"] == "redirect" {
		t.Fatal("the old password still works")
	}
	g.freshClient()
	g.challenge(auth, nil)
	g.challenge(auth, map[string]string{"uid_field": "bob"})
	if res := g.challenge(auth, map[string]string{"password": newPW}); res["type"] != "redirect" {
		t.Fatalf("the new password: %v", res)
	}

	// Enroll.
	g.freshClient()
	const enroll = "/.flowgate/api/v1/flows/default-enrollment-flow/"
	if ch := g.challenge(enroll, nil); stage(ch) != "prompt" {
		t.Fatalf("enrollment: %v", ch)
	}
	const pw = "Correct-Horse-77-Staple"
	if ch := g.challenge(enroll, map[string]string{"username": "erin", "password": pw, "password_repeat": pw}); stage(ch) != "prompt" {
		t.Fatalf("enrollment, first prompt: %v", ch)
	}
	if res := g.challenge(enroll, map[string]string{"name": "Erin Example", "email": "erin@example.com"}); res["type"] != "redirect" {
		t.Fatalf("enrollment, second prompt: %v", res)
	}
	if code, h := g.upstreamHeaders("/inside"); code != 200 || h.Get("Remote-User") != "erin" || h.Get("Remote-Email") != "erin@example.com" {
		t.Fatalf("enrolled: %d %v", code, h)
	}

	// The authentik originals import to what their conversions loaded.
	_, before := adminDo(t, "GET", "/flowgate/config", "", "")
	for i := 0; i < 2; i++ {
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if code, body := adminDo(t, "POST", "/flowgate/import?name="+filepath.Base(f), string(data), "application/yaml"); code != 200 {
				t.Fatalf("import %s: %d %s", f, code, body)
			}
		}
		if _, after := adminDo(t, "GET", "/flowgate/config", "", ""); after != before {
			t.Fatalf("import %d changed the configuration:\n%s\n---\n%s", i+1, before, after)
		}
	}
	// A file that is rejected applies nothing, not even its valid entries: the
	// flow's new title would land before the binding to a stage flowgate lacks.
	const bad = `version: 1
entries:
  - model: authentik_flows.flow
    id: flow
    identifiers: {slug: default-authentication-flow}
    attrs: {name: Changed, title: Changed, designation: authentication}
  - model: authentik_stages_authenticator_duo.authenticatorduostage
    id: duo
    identifiers: {name: duo}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf duo, order: 5}
`
	if code, body := adminDo(t, "POST", "/flowgate/import?name=bad.yaml", bad, "application/yaml"); code != http.StatusBadRequest ||
		!strings.Contains(body, "bad.yaml:11") || !strings.Contains(body, "duo") {
		t.Fatalf("import of a file binding a Duo stage: %d %s (want 400 naming bad.yaml:11 and the stage)", code, body)
	}
	if _, after := adminDo(t, "GET", "/flowgate/config", "", ""); after != before {
		t.Fatalf("a rejected import changed the configuration:\n%s\n---\n%s", before, after)
	}
	// And through the CLI, with the warnings on stderr.
	_, errOut, err := runSplit(t, "import", files[0], "--address", "localhost:2999")
	if err != nil || !strings.Contains(errOut, "(left-out)") {
		t.Fatalf("cli import: %v %q", err, errOut)
	}

	// Every other converted authentication flow signs a user in too; they
	// share slugs, so each is imported in turn.
	for _, tc := range []struct{ file, slug string }{
		{"flows-login-2fa.yaml", "default-authentication-flow"},
		{"flows-login-conditional-captcha.yaml", "default-authentication-flow"},
		{"handmade-pk-export.json", "pk-login"},
		{"handmade-tags.yaml", "tags-login"},
	} {
		out, _, err := runSplit(t, "convert", filepath.Join(authentikOwn, tc.file), "--to", "json")
		if err != nil {
			t.Fatal(err)
		}
		if code, body := adminDo(t, "POST", "/flowgate/import?name="+tc.file, out, "application/json"); code != 200 {
			t.Fatalf("import converted %s: %d %s", tc.file, code, body)
		}
		g.freshClient()
		path := "/.flowgate/api/v1/flows/" + tc.slug + "/"
		g.challenge(path, nil)
		if ch := g.challenge(path, map[string]string{"uid_field": "alice"}); stage(ch) != "password" {
			t.Fatalf("%s: after identification: %v", tc.file, ch)
		}
		if res := g.challenge(path, map[string]string{"password": "pw-alice"}); res["type"] != "redirect" {
			t.Fatalf("%s: after password: %v", tc.file, res)
		}
	}
}

// TestAuthentikConditionalCaptcha loads authentik's "login with conditional
// captcha" example unchanged through the blueprints option: the captcha
// appears once the client has failed 5 logins (input.reputation).
func TestAuthentikConditionalCaptcha(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	data, err := os.ReadFile(filepath.Join(authentikOwn, "flows-login-conditional-captcha.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(g.seed, "captcha.yaml"), data, 0o600)
	g.load("", "")
	const auth = "/.flowgate/api/v1/flows/default-authentication-flow/"
	login := func(user, pw string) map[string]any {
		g.freshClient()
		g.challenge(auth, nil)
		g.challenge(auth, map[string]string{"uid_field": user})
		return g.challenge(auth, map[string]string{"password": pw})
	}
	if res := login("alice", "pw-alice"); res["type"] != "redirect" {
		t.Fatalf("clean client: %v", res)
	}
	for _, u := range []string{"a1", "a2", "a3", "a4", "a5"} {
		login(u, "wrong")
	}
	if res := login("alice", "pw-alice"); stage(res) != "captcha" {
		t.Fatalf("after 5 failures from this client: %v (the handler must pass the regulator as Request.Reputation)", res)
	}
}
