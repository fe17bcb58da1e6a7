package stages_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
	"github.com/flowgate/flowgate/flowengine/store/redis"
	"github.com/flowgate/flowgate/flowengine/store/redis/redistest"
)

// sharedStores are the stores several gateways or requests share, each holding
// alice: a real bolt file and a real Redis server. One-time codes must be
// spent once on both (their UpdateUserIf is the compare-and-swap).
func sharedStores(t *testing.T, e *stageEnv) map[string]flowengine.Store {
	t.Helper()
	ctx := context.Background()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "flowgate.db"), bolt.Options{Clock: e.clock, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := redistest.Start(t)
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr},
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second})
	t.Cleanup(func() { client.Close() })
	r, err := redis.New(redis.Options{Client: client, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]flowengine.Store{"bolt": b, "redis": r}
	for name, st := range stores {
		if err := st.CreateUser(ctx, e.alice); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return stores
}
