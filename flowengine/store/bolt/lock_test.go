package bolt_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bberrors "go.etcd.io/bbolt/errors"

	"github.com/flowgate/flowgate/flowengine/store/bolt"
)

// Two Caddy processes on one data directory: the second open waits for the
// file lock, then says who holds it and which file, not just "timeout".
func TestOpenLockedFileNamesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowgate.db")
	first, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	start := time.Now()
	second, err := bolt.Open(path, bolt.Options{SweepInterval: -1, OpenTimeout: 100 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("a second open of a locked file succeeded")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second open waited %s with OpenTimeout 100ms", waited)
	}
	msg := err.Error()
	for _, want := range []string{path, "locked by another process", "100ms"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if !errors.Is(err, bberrors.ErrTimeout) {
		t.Errorf("error %v does not wrap bbolt's ErrTimeout", err)
	}

	// Once the first holder closes, the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := bolt.Open(path, bolt.Options{SweepInterval: -1, OpenTimeout: time.Second})
	if err != nil {
		t.Fatalf("open after the lock was released: %v", err)
	}
	again.Close()
}
