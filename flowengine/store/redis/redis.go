// Package redis is the Store for several gateway replicas: users, sessions, flow
// executions, flows and counters in Redis, through go-redis's UniversalClient
// (single node, Sentinel or Cluster). Every key carries one hash tag, so
// multi-key scripts work on a Cluster too.
package redis

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowgate/flowgate/flowengine"
)

var (
	//go:embed lua/put_user.lua
	putUserLua string
	//go:embed lua/delete_user.lua
	deleteUserLua string
	//go:embed lua/revoke_sessions.lua
	revokeSessionsLua string
	//go:embed lua/incr_counter.lua
	incrCounterLua string
	//go:embed lua/apply_config.lua
	applyConfigLua string

	putUserScript        = goredis.NewScript(putUserLua)
	deleteUserScript     = goredis.NewScript(deleteUserLua)
	revokeSessionsScript = goredis.NewScript(revokeSessionsLua)
	incrCounterScript    = goredis.NewScript(incrCounterLua)
	applyConfigScript    = goredis.NewScript(applyConfigLua)
)

// DefaultPrefix starts every key; the braces are the Cluster hash tag.
const DefaultPrefix = "{flowgate}:"

// ChangeChannel (after the prefix) carries change notices between replicas.
const ChangeChannel = "changes"

// Store is a Redis-backed flowengine.Store.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	clock  flowengine.Clock
}

// Options configure a Store. Client is required.
type Options struct {
	Client goredis.UniversalClient
	// Prefix of every key (default "{flowgate}:"). Keep one {hash tag} in it for
	// Redis Cluster.
	Prefix string
	Clock  flowengine.Clock
}

// New returns a store on the client. It does not contact Redis.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("redis store: a client is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Clock == nil {
		opts.Clock = flowengine.SystemClock{}
	}
	return &Store{c: opts.Client, prefix: opts.Prefix, clock: opts.Clock}, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.c.Close() }

func (s *Store) k(parts ...string) string { return s.prefix + strings.Join(parts, "") }

// wrap maps redis.Nil to ErrNotFound and connection trouble to ErrUnavailable.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return flowengine.ErrNotFound
	case errors.Is(err, flowengine.ErrNotFound), errors.Is(err, flowengine.ErrConflict):
		return err
	}
	return fmt.Errorf("redis %s: %w: %v", op, flowengine.ErrUnavailable, err)
}

// ttlUntil is the time left until t on the store's clock (at least 1ms, so an
// expired value vanishes at once instead of living forever).
func (s *Store) ttlUntil(t time.Time) time.Duration {
	d := t.Sub(s.clock.Now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// Values with a TTL start with their expiry (Unix ms on the store's clock), so
// expiry follows the injected clock as well as Redis's own.
func withExpiry(exp time.Time, data []byte) []byte {
	return append([]byte(fmt.Sprintf("%016x", exp.UnixMilli())), data...)
}

func (s *Store) fresh(v []byte) ([]byte, bool) {
	if len(v) < 16 {
		return nil, false
	}
	var ms int64
	if _, err := fmt.Sscanf(string(v[:16]), "%016x", &ms); err != nil {
		return nil, false
	}
	if !s.clock.Now().Before(time.UnixMilli(ms)) {
		return nil, false
	}
	return v[16:], true
}

// --- users

// userRecord is how a user is stored: with the index keys it holds, so that a
// rename or delete removes exactly those.
type userRecord struct {
	User *flowengine.User `json:"user"`
	KN   string           `json:"kn"`
	KE   string           `json:"ke"`
}

func record(u *flowengine.User) (string, string, string, error) {
	kn, ke := flowengine.NormalizeKey(u.Username), flowengine.NormalizeKey(u.Email)
	raw, err := json.Marshal(userRecord{User: u, KN: kn, KE: ke})
	return string(raw), kn, ke, err
}

// putUser runs put_user.lua. expected, if not "", is the exact stored record
// an update may replace (else ErrChanged).
func (s *Store) putUser(ctx context.Context, u *flowengine.User, mode, expected string) error {
	if u.ID == "" || flowengine.NormalizeKey(u.Username) == "" {
		return errors.New("user needs an id and a username")
	}
	rec, kn, ke, err := record(u)
	if err != nil {
		return err
	}
	hasEmail := "0"
	emailKey := s.k("ue:")
	if ke != "" {
		hasEmail, emailKey = "1", s.k("ue:", ke)
	}
	active := "0"
	if u.IsActive {
		active = "1"
	}
	// An update that deactivates the user deletes their sessions in the same script.
	res, err := putUserScript.Run(ctx, s.c, []string{s.k("u:", u.ID), s.k("un:", kn), emailKey, s.k("users"), s.k("us:", u.ID)},
		u.ID, rec, mode, hasEmail, s.prefix, active, expected).Text()
	if err != nil {
		return wrap(mode+" user", err)
	}
	switch res {
	case "ok":
		return nil
	case "notfound":
		return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrNotFound)
	case "changed":
		return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrChanged)
	}
	return fmt.Errorf("user %q: %s: %w", u.Username, strings.TrimPrefix(res, "conflict:"), flowengine.ErrConflict)
}

// CreateUser implements flowengine.UserStore.
func (s *Store) CreateUser(ctx context.Context, u *flowengine.User) error {
	return s.putUser(ctx, u, "create", "")
}

// UpdateUser implements flowengine.UserStore.
func (s *Store) UpdateUser(ctx context.Context, u *flowengine.User) error {
	return s.putUser(ctx, u, "update", "")
}

// UpdateUserIf implements flowengine.UserStore. The stored record is read and
// compared with prev here (re-encoded, so a record an older version wrote still
// matches the user it decodes to); the script then writes only over those exact
// bytes, as ApplyConfig does. A write landing in between makes it read again.
func (s *Store) UpdateUserIf(ctx context.Context, u, prev *flowengine.User) error {
	want, _, _, err := record(prev)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		raw, err := s.c.Get(ctx, s.k("u:", u.ID)).Result()
		if err != nil {
			if errors.Is(err, goredis.Nil) {
				return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrNotFound)
			}
			return wrap("update user", err)
		}
		if raw != want {
			stored, err := decodeUser(raw)
			if err != nil {
				return err
			}
			if again, _, _, err := record(stored); err != nil || again != want {
				return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrChanged)
			}
		}
		err = s.putUser(ctx, u, "update", raw)
		if !errors.Is(err, flowengine.ErrChanged) {
			return err
		}
	}
	return fmt.Errorf("user %q kept changing: %w", u.ID, flowengine.ErrChanged)
}

func decodeUser(raw string) (*flowengine.User, error) {
	var rec userRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.User == nil {
		return nil, fmt.Errorf("decoding user: %v", err)
	}
	return rec.User, nil
}

// GetUser implements flowengine.UserStore.
func (s *Store) GetUser(ctx context.Context, id string) (*flowengine.User, error) {
	raw, err := s.c.Get(ctx, s.k("u:", id)).Result()
	if err != nil {
		return nil, wrap("get user", err)
	}
	return decodeUser(raw)
}

func (s *Store) userByIndex(ctx context.Context, index, key string) (*flowengine.User, error) {
	k := flowengine.NormalizeKey(key)
	if k == "" {
		return nil, flowengine.ErrNotFound
	}
	id, err := s.c.Get(ctx, s.k(index, k)).Result()
	if err != nil {
		return nil, wrap("get user", err)
	}
	return s.GetUser(ctx, id)
}

// GetUserByUsername implements flowengine.UserStore.
func (s *Store) GetUserByUsername(ctx context.Context, name string) (*flowengine.User, error) {
	return s.userByIndex(ctx, "un:", name)
}

// GetUserByEmail implements flowengine.UserStore.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*flowengine.User, error) {
	return s.userByIndex(ctx, "ue:", email)
}

// ListUsers implements flowengine.UserStore.
func (s *Store) ListUsers(ctx context.Context) ([]*flowengine.User, error) {
	ids, err := s.c.SMembers(ctx, s.k("users")).Result()
	if err != nil {
		return nil, wrap("list users", err)
	}
	out := make([]*flowengine.User, 0, len(ids))
	if len(ids) > 0 {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.k("u:", id)
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, wrap("list users", err)
		}
		for _, v := range vals {
			if str, ok := v.(string); ok {
				u, err := decodeUser(str)
				if err != nil {
					return nil, err
				}
				out = append(out, u)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return flowengine.NormalizeKey(out[i].Username) < flowengine.NormalizeKey(out[j].Username)
	})
	return out, nil
}

// DeleteUser implements flowengine.UserStore.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := deleteUserScript.Run(ctx, s.c, []string{s.k("u:", id), s.k("us:", id), s.k("users")}, id, s.prefix).Text()
	if err != nil {
		return wrap("delete user", err)
	}
	if res == "notfound" {
		return flowengine.ErrNotFound
	}
	return nil
}

var _ flowengine.Store = (*Store)(nil)
