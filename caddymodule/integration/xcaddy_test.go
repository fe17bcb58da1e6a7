package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// xcaddy.json (xcaddy's Builder fields) must name the Caddy version and module of go.mod.
func TestXcaddyJSONMatchesGoMod(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(gomod)
	caddy := regexp.MustCompile(`(?m)^\s*github.com/caddyserver/caddy/v2 (v\S+)`).FindSubmatch(gomod)
	if module == nil || caddy == nil {
		t.Fatal("go.mod lacks the module line or the caddy requirement")
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "xcaddy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			ModulePath string `json:"module_path"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	if b.CaddyVersion != string(caddy[1]) {
		t.Errorf("xcaddy.json caddy_version %s, go.mod has %s", b.CaddyVersion, caddy[1])
	}
	if len(b.Plugins) != 1 || b.Plugins[0].ModulePath != string(module[1]) {
		t.Errorf("xcaddy.json plugins %v, want [%s]", b.Plugins, module[1])
	}
}
