package bolt_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
	"github.com/flowgate/flowgate/flowengine/store/storetest"
)

func open(t testing.TB, path string, c flowengine.Clock) *bolt.Store {
	s, err := bolt.Open(path, bolt.Options{Clock: c, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
		return open(t, filepath.Join(t.TempDir(), "flowgate.db"), c)
	})
}

func TestSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowgate.db")
	s := open(t, path, nil)
	u := &flowengine.User{ID: "u1", Username: "alice", IsActive: true}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &flowengine.Session{ID: "s1", UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	defer s.Close()
	if _, err := s.GetUserByUsername(ctx, "ALICE"); err != nil {
		t.Fatalf("user lost across restart: %v", err)
	}
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session lost across restart: %v", err)
	}
}

// A session lookup runs on every proxied request: it must not write to the file.
func TestSessionLookupDoesNotWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowgate.db")
	s := open(t, path, nil)
	defer s.Close()
	sess := &flowengine.Session{ID: "s1", UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, path)
	for i := 0; i < 100; i++ {
		if _, err := s.GetSession(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		s.GetSession(ctx, "missing")
	}
	if after := fileSum(t, path); after != before {
		t.Fatal("session lookups changed the bolt file")
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	return st.ModTime().String() + string(b)
}

func TestSweepRemovesExpired(t *testing.T) {
	ctx := context.Background()
	clock := flowengine.NewManualClock(time.Now())
	s := open(t, filepath.Join(t.TempDir(), "flowgate.db"), clock)
	defer s.Close()
	s.CreateSession(ctx, &flowengine.Session{ID: "old", UserID: "u", ExpiresAt: clock.Now().Add(time.Minute)})
	s.CreateSession(ctx, &flowengine.Session{ID: "new", UserID: "u", ExpiresAt: clock.Now().Add(time.Hour)})
	s.PutExecution(ctx, "x", []byte("{}"), time.Minute)
	clock.Advance(2 * time.Minute)
	if err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-2 * time.Minute) // even with time turned back, swept records are gone
	if _, err := s.GetSession(ctx, "old"); err == nil {
		t.Fatal("expired session not swept")
	}
	if _, err := s.GetExecution(ctx, "x"); err == nil {
		t.Fatal("expired execution not swept")
	}
	if _, err := s.GetSession(ctx, "new"); err != nil {
		t.Fatalf("live session swept: %v", err)
	}
}

func BenchmarkSessionLookup(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "flowgate.db"), nil)
	defer s.Close()
	storetest.BenchmarkSessionLookup(b, s)
}
