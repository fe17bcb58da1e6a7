package integration

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// caddy flowgate against a running gateway: how it finds the admin endpoint,
// what it says when there is none, its tables, and validate --address.

// With nothing listening, the commands say so and what to do, rather than
// "connection refused".
func TestCLINoGateway(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	addr := "localhost:" + port
	for _, args := range [][]string{
		{"user", "list", "--address", addr},
		{"flow", "list", "--json", "--address", addr},
		{"validate", "--address", addr, filepath.Join(repoRoot, "examples", "blueprints", "default-flows.yaml")},
	} {
		_, err := runCLI(t, "", args...)
		want := "no gateway's admin endpoint at " + addr + " (is Caddy running? use --address or --config)"
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("%v: %v\nwant: %s", args, err, want)
		}
	}
}

// --config finds the admin endpoint in a Caddyfile (admin localhost:2999) or a
// JSON config, as caddy reload does; lists print tables, --json the API's JSON.
func TestCLIConfigAddressAndTables(t *testing.T) {
	startGateway(t, "", "")
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte("{\n\tadmin localhost:2999\n}\n\n:8080 {\n\trespond ok\n}\n"), 0o644)
	conf := filepath.Join(dir, "gateway.conf")
	os.WriteFile(conf, []byte("{\n\tadmin localhost:2999\n}\n"), 0o644)
	jsonCfg := filepath.Join(dir, "caddy.json")
	os.WriteFile(jsonCfg, []byte(`{"admin":{"listen":"localhost:2999"}}`), 0o644)

	for _, args := range [][]string{
		{"user", "list", "--config", caddyfile},
		{"user", "list", "--config", conf, "--adapter", "caddyfile"},
		{"user", "list", "-c", jsonCfg},
	} {
		out, err := runCLI(t, "", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "USERNAME EMAIL GROUPS ACTIVE LOCKED LAST LOGIN CREATED" {
			t.Fatalf("%v: not a table of two users:\n%s", args, out)
		}
		alice := strings.Fields(lines[1])
		if len(alice) < 7 || alice[0] != "alice" || alice[1] != "alice@example.com" || alice[2] != "staff" ||
			alice[3] != "yes" || alice[4] != "no" || alice[5] != "never" {
			t.Fatalf("%v: alice's row %q", args, lines[1])
		}
	}
	// A config naming another admin address is followed there.
	other := filepath.Join(dir, "other.caddyfile")
	os.WriteFile(other, []byte("{\n\tadmin localhost:1\n}\n"), 0o644)
	if _, err := runCLI(t, "", "user", "list", "--config", other); err == nil || !strings.Contains(err.Error(), "no gateway's admin endpoint at localhost:1") {
		t.Fatalf("--config with another admin address: %v", err)
	}
	// --address wins over --config.
	if out, err := runCLI(t, "", "user", "list", "--config", other, "--address", "localhost:2999"); err != nil || !strings.Contains(out, "alice") {
		t.Fatalf("--address and --config: %v\n%s", err, out)
	}

	out, err := runCLI(t, "", "user", "list", "--json", "--address", "localhost:2999")
	var users []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &users) != nil || len(users) != 2 {
		t.Fatalf("user list --json: %v\n%s", err, out)
	}
	if _, ok := users[0]["username"]; !ok {
		t.Fatalf("user list --json: %s", out)
	}

	out, err = runCLI(t, "", "flow", "list", "--address", "localhost:2999")
	if err != nil || !strings.HasPrefix(out, "SLUG") {
		t.Fatalf("flow list: %v\n%s", err, out)
	}
	for _, want := range [][]string{
		{"default-authentication", "authentication", "0", "3", "yes"},
		{"default-invalidation", "invalidation", "0", "1", "yes"},
	} {
		if !containsFields(out, want) {
			t.Fatalf("flow list lacks %v:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "", "flow", "list", "--json", "--address", "localhost:2999")
	if err != nil || !strings.Contains(out, `"slug":"default-authentication"`) {
		t.Fatalf("flow list --json: %v\n%s", err, out)
	}
}

// containsFields reports whether a line of out starts with these fields.
func containsFields(out string, fields []string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// A file that uses a stage only the running gateway defines: offline validate
// refuses it and says why; validate --address (or --config) checks it merged
// onto the gateway's flows, stages and policies and accepts it, as import does.
func TestCLIValidateAgainstGateway(t *testing.T) {
	startGateway(t, "", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "extra.yaml")
	os.WriteFile(file, []byte(`version: 1
flows:
  - slug: second-login
    designation: authentication
    stages:
      - {stage: default-authentication-identification, order: 10}
      - {stage: default-authentication-password, order: 20}
      - {stage: default-authentication-login, order: 30}
`), 0o644)
	_, err := runCLI(t, "", "validate", file)
	if err == nil || !strings.Contains(err.Error(), `unknown stage "default-authentication-identification"`) ||
		!strings.Contains(err.Error(), "validate checks the files alone; stages and policies defined in the running gateway are not seen: pass --address or --config") {
		t.Fatalf("offline validate: %v", err)
	}
	out, err := runCLI(t, "", "validate", "--address", "localhost:2999", file)
	if err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("validate --address: %v %s", err, out)
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte("{\n\tadmin localhost:2999\n}\n"), 0o644)
	if out, err := runCLI(t, "", "validate", "--config", caddyfile, file); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("validate --config: %v %s", err, out)
	}
	// Still checked: a stage the gateway does not define either.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nflows:\n  - {slug: x, designation: enrollment, stages: [{stage: nope, order: 1}]}\n"), 0o644)
	if _, err := runCLI(t, "", "validate", "--address", "localhost:2999", bad); err == nil ||
		!strings.Contains(err.Error(), `bad.yaml:3: flow x: stages[0]: unknown stage "nope"`) {
		t.Fatalf("validate --address, a stage nobody defines: %v", err)
	}
	// Nothing was applied.
	if status, _ := adminDo(t, "GET", "/flowgate/flows/second-login/export", "", ""); status != 404 {
		t.Fatalf("validate applied the file: %d", status)
	}
	// GET /flowgate/config is every flow, stage and policy as one blueprint.
	status, body := adminDo(t, "GET", "/flowgate/config?format=json", "", "")
	var doc struct {
		Flows    []struct{ Slug string }
		Stages   []struct{ Name string }
		Policies []struct{ Name string }
	}
	if status != 200 || json.Unmarshal([]byte(body), &doc) != nil || len(doc.Flows) != 2 || len(doc.Stages) != 4 || len(doc.Policies) != 1 {
		t.Fatalf("GET /flowgate/config: %d %s", status, body)
	}
}

// user set changes only the fields given; user revoke --session ends one
// session, without --session all of them.
func TestCLIUserSetAndRevoke(t *testing.T) {
	g := startGateway(t, "", "")
	addr := []string{"--address", "localhost:2999"}
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, "", append(args, addr...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	cli("user", "set", "bob", "--name", "Robert", "--groups", "ops,dev")
	out := cli("user", "list", "--json")
	var users []map[string]any
	json.Unmarshal([]byte(out), &users)
	for _, u := range users {
		if groups, _ := json.Marshal(u["groups"]); u["username"] == "bob" &&
			(u["name"] != "Robert" || u["email"] != "bob@example.com" || u["is_active"] != true || string(groups) != `["ops","dev"]`) {
			t.Fatalf("after user set: %v", u)
		}
	}
	if _, err := runCLI(t, "", append([]string{"user", "set", "bob"}, addr...)...); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("user set without a change: %v", err)
	}
	if _, err := runCLI(t, "", append([]string{"user", "set", "nobody", "--name", "x"}, addr...)...); err == nil || err.Error() != `no user "nobody"` {
		t.Fatalf("user set of an unknown user: %v", err)
	}

	// Two sessions of bob, in two browsers.
	jars := make([]http.CookieJar, 2)
	for i := range jars {
		jars[i], _ = cookiejar.New(nil)
		g.tc.Client.Jar = jars[i]
		if res := g.login("bob", "pw-bob", "/"); res["type"] != "redirect" {
			t.Fatalf("login %d: %v", i, res)
		}
	}
	out = cli("user", "sessions", "bob")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "HANDLE") {
		t.Fatalf("user sessions: not a table of two:\n%s", out)
	}
	handle := strings.Fields(lines[1])[0]
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(handle) {
		t.Fatalf("handle %q in\n%s", handle, out)
	}
	cli("user", "revoke", "bob", "--session", handle)
	if out := cli("user", "sessions", "bob"); strings.Contains(out, handle) || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Fatalf("after revoking %s:\n%s", handle, out)
	}
	if _, err := runCLI(t, "", append([]string{"user", "revoke", "bob", "--session", handle}, addr...)...); err == nil {
		t.Fatal("revoking a revoked session succeeded")
	}
	// Deactivating ends the other one.
	cli("user", "set", "bob", "--active=false")
	if out := cli("user", "sessions", "bob"); strings.TrimSpace(out) != "no sessions" {
		t.Fatalf("after user set --active=false:\n%s", out)
	}
	for _, jar := range jars {
		g.tc.Client.Jar = jar
		if status, _ := g.upstreamHeaders("/"); status != http.StatusUnauthorized {
			t.Fatalf("a session of the deactivated user: %d", status)
		}
	}
}
