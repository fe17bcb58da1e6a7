// Package integration holds every test that runs a real, in-process Caddy
// (caddytest, admin port 2999) with flowgate, plus the browser test.
package integration

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
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
