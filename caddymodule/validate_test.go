package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// adaptCaddyfile runs the Caddyfile adapter as `caddy adapt` does.
func adaptCaddyfile(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	return out, err
}

// flowgateJSON is the flowgate app's JSON in an adapted config.
func flowgateJSON(t *testing.T, out []byte) map[string]any {
	t.Helper()
	var cfg struct {
		Apps map[string]map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps["flowgate"]
}

// Editing a blueprint changes the adapted config (so `caddy reload` applies it
// without --force), and only a change of the blueprints does.
func TestBlueprintsDigestMakesEditsConfigChanges(t *testing.T) {
	dir := t.TempDir()
	single := filepath.Join(dir, "single.yaml")
	bpDir := filepath.Join(dir, "blueprints")
	os.Mkdir(bpDir, 0o755)
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(single, "version: 1\n")
	write(filepath.Join(bpDir, "10-flows.yaml"), "version: 1\nstages:\n  - {name: a, type: dummy}\n")
	write(filepath.Join(bpDir, "README.md"), "not a blueprint")
	src := "{\n\tflowgate {\n\t\tstorage memory\n\t\tblueprints " + single + " " + bpDir + "\n\t}\n}\n:9999 {\n\tflowgate\n}\n"
	adapt := func() (string, string) {
		t.Helper()
		out, err := adaptCaddyfile(t, src)
		if err != nil {
			t.Fatal(err)
		}
		digest, _ := flowgateJSON(t, out)["blueprints_digest"].(string)
		if len(digest) != 64 {
			t.Fatalf("blueprints_digest %q", digest)
		}
		return string(out), digest
	}
	first, d0 := adapt()
	if again, _ := adapt(); again != first {
		t.Fatal("adapting twice without an edit gave different JSON")
	}
	seen := map[string]string{d0: "the start"}
	for _, step := range []struct {
		name   string
		edit   func()
		change bool
	}{
		{"edit the file named", func() { write(single, "version: 1\n# edited\n") }, true},
		{"edit a file in the directory", func() {
			write(filepath.Join(bpDir, "10-flows.yaml"), "version: 1\nstages:\n  - {name: b, type: dummy}\n")
		}, true},
		{"add a file to the directory", func() { write(filepath.Join(bpDir, "20-more.json"), `{"version": 1}`) }, true},
		{"rename a file (the order files apply in)", func() {
			os.Rename(filepath.Join(bpDir, "20-more.json"), filepath.Join(bpDir, "05-more.json"))
		}, true},
		{"edit a file that is no blueprint", func() { write(filepath.Join(bpDir, "README.md"), "still not one") }, false},
	} {
		before, dBefore := adapt()
		step.edit()
		after, d := adapt()
		if changed := after != before; changed != step.change {
			t.Fatalf("%s: JSON changed %v, want %v", step.name, changed, step.change)
		}
		if step.change {
			if prev, ok := seen[d]; ok {
				t.Fatalf("%s: digest %s equals the one of %s", step.name, d, prev)
			}
			seen[d] = step.name
		} else if d != dBefore {
			t.Fatalf("%s changed the digest", step.name)
		}
	}
}

// A blueprint path that cannot be read fails the adapt with the Caddyfile's
// line; one that does not exist here is recorded as missing, so a Caddyfile
// can be adapted away from the machine it runs on.
func TestBlueprintsDigestUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A file in the directory that cannot be opened: a dangling link.
	bpDir := filepath.Join(dir, "blueprints")
	os.Mkdir(bpDir, 0o755)
	dangling := filepath.Join(bpDir, "20-gone.yaml")
	os.Symlink(filepath.Join(dir, "nowhere.yaml"), dangling)
	_, err := adaptCaddyfile(t, "{\n\tflowgate {\n\t\tstorage memory\n\n\t\tblueprints "+bpDir+"\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), "blueprints: open "+dangling+": no such file or directory, at Caddyfile:5") {
		t.Fatalf("dangling link in the directory: %v", err)
	}
	// A path through a file.
	file := filepath.Join(dir, "file.yaml")
	os.WriteFile(file, []byte("version: 1\n"), 0o644)
	if _, err := adaptCaddyfile(t, "{\n\tflowgate {\n\t\tblueprints "+filepath.Join(file, "x.yaml")+"\n\t}\n}\n"); err == nil ||
		!strings.Contains(err.Error(), "not a directory, at Caddyfile:3") {
		t.Fatalf("a path through a file: %v", err)
	}
	if os.Geteuid() == 0 {
		return // root reads any file
	}
	locked := filepath.Join(dir, "locked.yaml")
	os.WriteFile(locked, []byte("version: 1\n"), 0o000)
	_, err = adaptCaddyfile(t, "{\n\tflowgate {\n\t\tstorage memory\n\t\tblueprints "+locked+"\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), "blueprints: open "+locked+": permission denied, at Caddyfile:4") {
		t.Fatalf("unreadable file: %v", err)
	}
	lockedDir := filepath.Join(dir, "locked")
	os.Mkdir(lockedDir, 0o000)
	t.Cleanup(func() { os.Chmod(lockedDir, 0o755) })
	if _, err := adaptCaddyfile(t, "{\n\tflowgate {\n\t\tblueprints "+lockedDir+"\n\t}\n}\n"); err == nil || !strings.Contains(err.Error(), "Caddyfile:3") {
		t.Fatalf("unreadable directory: %v", err)
	}
}

func TestBlueprintsDigestMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-here.yaml")
	src := "{\n\tflowgate {\n\t\tblueprints " + missing + "\n\t}\n}\n"
	out, err := adaptCaddyfile(t, src)
	if err != nil {
		t.Fatalf("a missing path failed the adapt: %v", err)
	}
	d0, _ := flowgateJSON(t, out)["blueprints_digest"].(string)
	os.WriteFile(missing, []byte("version: 1\n"), 0o644)
	out, _ = adaptCaddyfile(t, src)
	if d, _ := flowgateJSON(t, out)["blueprints_digest"].(string); d == d0 || d == "" {
		t.Fatalf("creating the missing file left the digest %q", d)
	}
}

// A cookie name no browser would keep is refused by the adapter with its line
// and by App.Validate for JSON configs.
func TestCookieName(t *testing.T) {
	for _, tc := range []struct{ name, wantErr string }{
		{"flowgate_session", ""},
		{"my-session.v2", ""},
		{"bad name;", `cookie name "bad name;": not a valid cookie name`},
		{"a=b", "not a valid cookie name"},
		{`quo"te`, "not a valid cookie name"},
		{"caf\u00e9", "not a valid cookie name"},
		{"__Host-session", "leave out the __Host-/__Secure- prefix"},
		{"__secure-session", "leave out the __Host-/__Secure- prefix"},
		{"flowgate_flow", "flowgate's flow cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCookieName(tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkCookieName = %v, want an error containing %q", err, tc.wantErr)
			}
			if err := (&App{Cookie: CookieConfig{Name: tc.name}}).Validate(); (err == nil) != (tc.wantErr == "") {
				t.Fatalf("App.Validate = %v", err)
			}
		})
	}
	_, err := adaptCaddyfile(t, "{\n\tflowgate {\n\t\tcookie {\n\t\t\tname \"bad name;\"\n\t\t}\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), `cookie name "bad name;": not a valid cookie name`) || !strings.Contains(err.Error(), "Caddyfile:4") {
		t.Fatalf("adapt: %v", err)
	}
}

// validateConfig adapts src and runs `caddy validate` on it (Provision and
// Validate of every module, nothing started).
func validateConfig(t *testing.T, src string) error {
	t.Helper()
	out, err := adaptCaddyfile(t, src)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// What used to fail only at run time fails `caddy validate`: a template
// override referring to a missing field (every page a 500), a placeholder
// password hash in a seed user, and (in JSON, which the adapter does not see)
// a bad cookie name.
func TestCaddyValidateCatchesRuntimeFailures(t *testing.T) {
	dir := t.TempDir()
	global := func(lines string) string {
		return "{\n\tadmin off\n\tflowgate {\n\t\tstorage memory\n" + lines + "\t}\n}\n:9999 {\n\tflowgate\n}\n"
	}
	tplDir := filepath.Join(dir, "templates")
	os.Mkdir(tplDir, 0o755)
	os.WriteFile(filepath.Join(tplDir, "stage_password.html"), []byte(`{{define "stage_password"}}{{template "heading" .}}{{.Username}}{{template "form" .}}{{end}}`), 0o644)
	err := validateConfig(t, global("\t\ttemplates "+tplDir+"\n"))
	if err == nil || !strings.Contains(err.Error(), "templates "+tplDir+": template stage_password does not render") ||
		!strings.Contains(err.Error(), "can't evaluate field Username") {
		t.Fatalf("bad template override: %v", err)
	}
	os.WriteFile(filepath.Join(tplDir, "stage_password.html"), []byte(`{{define "stage_password"}}{{template "heading" .}}{{.Data.user}}{{template "form" .}}{{end}}`), 0o644)
	if err := validateConfig(t, global("\t\ttemplates "+tplDir+"\n")); err != nil {
		t.Fatalf("good template override: %v", err)
	}

	users := filepath.Join(dir, "users.yaml")
	os.WriteFile(users, []byte("version: 1\nusers:\n  - username: demo\n    password_hash: \"$2a$14$…\"\n"), 0o644)
	err = validateConfig(t, global("\t\tblueprints "+users+"\n"))
	if err == nil || !strings.Contains(err.Error(), users+":3: user demo: password_hash: bcrypt hash of 8 characters, want 60 (a placeholder?)") {
		t.Fatalf("placeholder password hash: %v", err)
	}

	out, err := adaptCaddyfile(t, global(""))
	if err != nil {
		t.Fatal(err)
	}
	out = []byte(strings.Replace(string(out), `"storage":{"backend":"memory"}`, `"storage":{"backend":"memory"},"cookie":{"name":"bad name;"}`, 1))
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), `cookie name "bad name;"`) {
		t.Fatalf("bad cookie name in JSON: %v", err)
	}
}
