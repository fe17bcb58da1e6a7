package caddymodule

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
	"github.com/flowgate/flowgate/flowengine/store/cache"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	fgredis "github.com/flowgate/flowgate/flowengine/store/redis"
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
	backend := a.backend()
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
		opts, err := a.Storage.redisOptions()
		if err != nil {
			return err
		}
		key = "redis:" + strings.Join(opts.Addrs, ",") + "/" + fmt.Sprint(opts.DB) + "/" + a.Storage.Prefix
		useRedisLogger(a.logger.Named("redis"))
		construct = func() (caddy.Destructor, error) {
			s, err := fgredis.New(fgredis.Options{Client: goredis.NewUniversalClient(opts), Prefix: a.Storage.Prefix})
			if err != nil {
				return nil, err
			}
			return pooledStore{s}, nil
		}
	default:
		return fmt.Errorf("storage: unknown backend %q (want bolt, memory or redis)", backend)
	}
	v, _, err := storePool.LoadOrNew(key, construct)
	if err != nil {
		return fmt.Errorf("opening %s store: %w", backend, err)
	}
	// Sessions and users are read on every proxied request: serve them from a
	// cache that every write through this app invalidates (and, on Redis, every
	// replica's, by change notice), with a TTL bounding staleness if a notice is
	// lost: a revocation is seen everywhere in under a second.
	a.raw = v.(pooledStore).Store
	a.store, a.storeKey = cache.New(a.raw, cacheTTL, 100_000), key
	return nil
}

const cacheTTL = 750 * time.Millisecond

// redisLog carries go-redis's own log lines (a failed dial, a dropped pub/sub
// connection, a Sentinel failover) into Caddy's structured log, as entries of
// the logger flowgate.redis, instead of plain text lines on stderr in the
// middle of Caddy's JSON. go-redis has one logger per process: it is installed
// once, and each config load that opens a Redis store points it at that
// config's logger (the latest wins, as Caddy's own logs do).
var (
	redisLog     atomic.Pointer[zap.Logger]
	redisLogOnce sync.Once
)

func useRedisLogger(l *zap.Logger) {
	redisLog.Store(l)
	redisLogOnce.Do(func() { goredis.SetLogger(zapRedisLogger{}) })
}

// zapRedisLogger implements go-redis's logging interface (Printf with a
// context). go-redis has no levels on these lines: at its default level it
// prints what went wrong, plus Sentinel news (a new master, a new sentinel), so
// a line that says it failed is a warning and the rest are info.
type zapRedisLogger struct{}

func (zapRedisLogger) Printf(_ context.Context, format string, v ...any) {
	l := redisLog.Load()
	if l == nil {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := zapcore.InfoLevel
	lower := strings.ToLower(msg)
	for _, bad := range []string{"fail", "error", "panic", "discard", "bad ", "timeout", "unable", "cannot", "refused"} {
		if strings.Contains(lower, bad) {
			level = zapcore.WarnLevel
			break
		}
	}
	if ce := l.Check(level, msg); ce != nil {
		ce.Write()
	}
}

// backend is the configured store backend's name (default bolt).
func (a *App) backend() string {
	if a.Storage == nil || a.Storage.Backend == "" {
		return "bolt"
	}
	return a.Storage.Backend
}

// redisOptions builds the client options from the URL and the block's settings.
func (c *StorageConfig) redisOptions() (*goredis.UniversalOptions, error) {
	if c.URL == "" {
		return nil, fmt.Errorf("storage redis: a URL is required (redis://host:port/db or rediss://…)")
	}
	base, err := goredis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("storage redis: %w", err)
	}
	opts := &goredis.UniversalOptions{
		Addrs:      append([]string{base.Addr}, c.Addresses...),
		DB:         base.DB,
		Username:   base.Username,
		Password:   base.Password,
		TLSConfig:  base.TLSConfig,
		MasterName: c.MasterName,
		PoolSize:   c.PoolSize,
		// Fail fast: a request waits for Redis at most this long before a 503.
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   1,
	}
	if c.Password != "" {
		opts.Password = c.Password
	}
	if c.TLS && opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.DialTimeout > 0 {
		opts.DialTimeout = time.Duration(c.DialTimeout)
	}
	if c.ReadTimeout > 0 {
		opts.ReadTimeout, opts.WriteTimeout = time.Duration(c.ReadTimeout), time.Duration(c.ReadTimeout)
	}
	return opts, nil
}
