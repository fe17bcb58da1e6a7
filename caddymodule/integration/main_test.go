// Package integration holds every test that runs a real, in-process Caddy
// (caddytest, admin port 2999) with flowgate, plus the browser test.
package integration

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

var self string

func TestMain(m *testing.M) {
	// Run as a second gateway process (the Redis replica test starts one).
	if cfg := os.Getenv("FLOWGATE_CHILD_CADDYFILE"); cfg != "" {
		os.Args = []string{"caddy", "run", "--config", cfg, "--adapter", "caddyfile"}
		caddycmd.Main()
		return
	}
	// caddytest rewrites os.Args; remember how to start this binary again.
	self, _ = os.Executable()
	// Caddy writes its config autosave and data (keys, bolt file) here, never
	// into the developer's home.
	dir, err := os.MkdirTemp("", "flowgate-integration-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir+"/config")
	os.Setenv("XDG_DATA_HOME", dir+"/data")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
