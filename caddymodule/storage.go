package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
	"github.com/flowgate/flowgate/flowengine/store/cache"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

// storePool shares open stores across config reloads: a reload must neither
// reopen the bolt file (its lock would deadlock) nor lose a memory store.
var storePool = caddy.NewUsagePool()

type pooledStore struct{ flowengine.Store }

func (p pooledStore) Destruct() error { return p.Store.Close() }

func (a *App) openStore() error {
	if a.Storage == nil {
		a.Storage = &StorageConfig{}
	}
	backend := a.Storage.Backend
	if backend == "" {
		backend = "bolt"
	}
	var key string
	var construct caddy.Constructor
	switch backend {
	case "bolt":
		path := a.Storage.Path
		if path == "" {
			path = defaultBoltPath()
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("storage path %s: %w", path, err)
		}
		key = "bolt:" + abs
		construct = func() (caddy.Destructor, error) {
			if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
				return nil, fmt.Errorf("creating storage directory: %w", err)
			}
			s, err := bolt.Open(abs, bolt.Options{})
			if err != nil {
				return nil, err
			}
			return pooledStore{s}, nil
		}
	case "memory":
		key = "memory"
		construct = func() (caddy.Destructor, error) { return pooledStore{memory.New(nil)}, nil }
	case "redis":
		return fmt.Errorf("storage redis: not available in this build yet; use bolt or memory")
	default:
		return fmt.Errorf("storage: unknown backend %q (want bolt, memory or redis)", backend)
	}
	v, _, err := storePool.LoadOrNew(key, construct)
	if err != nil {
		return fmt.Errorf("opening %s store: %w", backend, err)
	}
	// Sessions and users are read on every proxied request: serve them from a
	// cache that every write through this app invalidates, with a 1s TTL bounding
	// staleness against writers elsewhere.
	a.store, a.storeKey = cache.New(v.(pooledStore).Store, time.Second, 100_000), key
	return nil
}
