package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/cache"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/flowengine/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
		return cache.New(memory.New(c), time.Hour, 1000)
	})
}

// Writes through the cache are seen at once; writes behind its back within the TTL.
func TestInvalidation(t *testing.T) {
	ctx := context.Background()
	inner := memory.New(nil)
	c := cache.New(inner, 50*time.Millisecond, 1000)
	u := &flowengine.User{ID: "u", Username: "u", IsActive: true}
	c.CreateUser(ctx, u)
	s := &flowengine.Session{ID: "s", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}
	c.CreateSession(ctx, s)
	if _, err := c.GetSession(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	c.GetUser(ctx, "u")
	c.DeleteUserSessions(ctx, "u")
	if _, err := c.GetSession(ctx, "s"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("revoked session served from cache: %v", err)
	}
	u.IsActive = false
	c.UpdateUser(ctx, u)
	if got, _ := c.GetUser(ctx, "u"); got.IsActive {
		t.Fatal("stale user after update")
	}
	// Behind the cache's back (another process on a shared store): bounded by TTL.
	c.CreateSession(ctx, &flowengine.Session{ID: "s2", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)})
	c.GetSession(ctx, "s2")
	inner.DeleteSession(ctx, "s2")
	time.Sleep(60 * time.Millisecond)
	if _, err := c.GetSession(ctx, "s2"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("cache outlived its TTL: %v", err)
	}
}

func TestSessionUserSeesRevocation(t *testing.T) {
	ctx := context.Background()
	c := cache.New(memory.New(nil), time.Hour, 1000)
	c.CreateUser(ctx, &flowengine.User{ID: "u", Username: "u", IsActive: true, Groups: []string{"g"}})
	c.CreateSession(ctx, &flowengine.Session{ID: "s", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)})
	for i := 0; i < 2; i++ { // a miss, then a hit
		s, u, err := c.SessionUser(ctx, "s")
		if err != nil || s.ID != "s" || u.Username != "u" {
			t.Fatalf("lookup %d: %v %v %v", i, s, u, err)
		}
	}
	c.DeleteSession(ctx, "s")
	if _, _, err := c.SessionUser(ctx, "s"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("after logout: %v", err)
	}
	if _, _, err := c.SessionUser(ctx, "missing"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}
