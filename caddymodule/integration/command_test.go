package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/flowgate/flowgate/caddymodule"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "flowgate", SilenceUsage: true, SilenceErrors: true}
	caddymodule.BuildCommand(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestOfflineCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(repoRoot, "examples", "blueprints", "default-flows.yaml")
	if out, err := runCLI(t, "", "validate", good); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("validate good: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nflows:\n  - {slug: x, designation: authentication, stages: [{stage: nope, order: 1}]}\n"), 0o644)
	if _, err := runCLI(t, "", "validate", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml:3: flow x") {
		t.Fatalf("validate bad: %v", err)
	}
	out, err := runCLI(t, "", "convert", good, "--to", "json")
	if err != nil || !strings.HasPrefix(out, "{") || !strings.Contains(out, `"slug": "default-authentication"`) {
		t.Fatalf("convert: %v %s", err, out)
	}
	out, err = runCLI(t, "", "keygen")
	if err != nil || len(strings.Fields(out)) != 3 || len(strings.Fields(out)[1]) != 64 {
		t.Fatalf("keygen: %v %q", err, out)
	}
}

func TestOnlineCommands(t *testing.T) {
	g := startGateway(t, "", "")
	addr := []string{"--address", "localhost:2999"}
	out, err := runCLI(t, "s3cret-pw\n", append([]string{"user", "add", "dave", "--email", "dave@example.com", "--groups", "ops,dev", "--password-stdin"}, addr...)...)
	if err != nil || !strings.Contains(out, `"username":"dave"`) {
		t.Fatalf("user add: %v %s", err, out)
	}
	if res := g.login("dave", "s3cret-pw", "/"); res["type"] != "redirect" {
		t.Fatalf("login as CLI-added user: %v", res)
	}
	if out, err := runCLI(t, "", append([]string{"user", "list"}, addr...)...); err != nil || !strings.Contains(out, "dave") {
		t.Fatalf("user list: %v %s", err, out)
	}
	if _, err := runCLI(t, "x\n", append([]string{"user", "add", "DAVE", "--password-stdin"}, addr...)...); err == nil {
		t.Fatal("duplicate user added")
	}
	out, err = runCLI(t, "", append([]string{"export", "--flow", "default-authentication"}, addr...)...)
	if err != nil || !strings.Contains(out, "slug: default-authentication") {
		t.Fatalf("export: %v %s", err, out)
	}
	file := filepath.Join(t.TempDir(), "extra.yaml")
	os.WriteFile(file, []byte("version: 1\nstages:\n  - {name: hi, type: dummy}\nflows:\n  - {slug: hello, designation: enrollment, stages: [{stage: hi, order: 1}]}\n"), 0o644)
	if out, err := runCLI(t, "", append([]string{"import", file}, addr...)...); err != nil || !strings.Contains(out, `"flows":1`) {
		t.Fatalf("import: %v %s", err, out)
	}
	if resp, _ := g.do("GET", "/.flowgate/flows/hello/", ""); resp.StatusCode != 200 {
		t.Fatalf("imported flow: %d", resp.StatusCode)
	}
	if out, err := runCLI(t, "", append([]string{"flow", "delete", "hello"}, addr...)...); err != nil || !strings.Contains(out, `"deleted":"hello"`) {
		t.Fatalf("flow delete: %v %s", err, out)
	}
	if resp, _ := g.do("GET", "/.flowgate/flows/hello/", ""); resp.StatusCode != 404 {
		t.Fatalf("deleted flow: %d, want 404", resp.StatusCode)
	}
	if _, err := runCLI(t, "", append([]string{"flow", "delete", "hello"}, addr...)...); err == nil {
		t.Fatal("deleting a missing flow succeeded")
	}
	if out, err := runCLI(t, "", append([]string{"flow", "list", "--json"}, addr...)...); err != nil || strings.Contains(out, `"slug":"hello"`) || !strings.Contains(out, `"slug":"default-authentication"`) {
		t.Fatalf("flow list: %v %s", err, out)
	}
	if _, err := runCLI(t, "", append([]string{"user", "revoke", "dave"}, addr...)...); err != nil {
		t.Fatal(err)
	}
	if status, _ := g.upstreamHeaders("/"); status != 401 {
		t.Fatalf("revoked via CLI: %d", status)
	}
	if _, err := runCLI(t, "", append([]string{"user", "delete", "nobody"}, addr...)...); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("delete unknown: %v", err)
	}
}
