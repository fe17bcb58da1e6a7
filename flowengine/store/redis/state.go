package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowgate/flowgate/flowengine"
)

// PutExecution implements flowengine.ExecutionStore; Redis expires it.
func (s *Store) PutExecution(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	exp := s.clock.Now().Add(ttl)
	return wrap("put execution", s.c.Set(ctx, s.k("x:", id), withExpiry(exp, data), ttl).Err())
}

// GetExecution implements flowengine.ExecutionStore.
func (s *Store) GetExecution(ctx context.Context, id string) ([]byte, error) {
	raw, err := s.c.Get(ctx, s.k("x:", id)).Bytes()
	if err != nil {
		return nil, wrap("get execution", err)
	}
	data, ok := s.fresh(raw)
	if !ok {
		return nil, flowengine.ErrNotFound
	}
	return data, nil
}

// DeleteExecution implements flowengine.ExecutionStore.
func (s *Store) DeleteExecution(ctx context.Context, id string) error {
	return wrap("delete execution", s.c.Del(ctx, s.k("x:", id)).Err())
}

// IncrCounter implements flowengine.CounterStore: shared by every replica, so
// spreading attempts over replicas gains nothing.
func (s *Store) IncrCounter(ctx context.Context, key string, window time.Duration) (int64, error) {
	n, err := incrCounterScript.Run(ctx, s.c, []string{s.k("c:", key)}, s.clock.Now().UnixMilli(), window.Milliseconds()).Int64()
	return n, wrap("incr counter", err)
}

// GetCounter implements flowengine.CounterStore.
func (s *Store) GetCounter(ctx context.Context, key string) (int64, error) {
	vals, err := s.c.HMGet(ctx, s.k("c:", key), "n", "exp").Result()
	if err != nil {
		return 0, wrap("get counter", err)
	}
	var n, exp int64
	if str, ok := vals[0].(string); ok {
		fmt.Sscan(str, &n)
	}
	if str, ok := vals[1].(string); ok {
		fmt.Sscan(str, &exp)
	}
	if exp <= s.clock.Now().UnixMilli() {
		return 0, nil
	}
	return n, nil
}

// DeleteCounter implements flowengine.CounterStore.
func (s *Store) DeleteCounter(ctx context.Context, key string) error {
	return wrap("delete counter", s.c.Del(ctx, s.k("c:", key)).Err())
}

// LoadConfig implements flowengine.ConfigStore.
func (s *Store) LoadConfig(ctx context.Context) (*flowengine.Config, string, error) {
	cfg := &flowengine.Config{}
	raw, err := s.c.Get(ctx, s.k("config")).Bytes()
	if errors.Is(err, goredis.Nil) {
		return cfg, "", nil
	}
	if err != nil {
		return nil, "", wrap("load config", err)
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, "", fmt.Errorf("decoding config: %v", err)
	}
	return cfg, flowengine.ConfigRevision(raw), nil
}

// ApplyConfig implements flowengine.ConfigStore: config and seed users in one
// script, which first checks the stored revision and that every user is still as
// read here (MergeSeedUser decided on it), then a change notice so every replica
// reloads.
func (s *Store) ApplyConfig(ctx context.Context, base string, cfg *flowengine.Config, users []flowengine.SeedUser) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		args := []any{s.prefix, string(raw), base}
		for _, seed := range users {
			seenID, seenRec, existing, err := s.userRecordByName(ctx, seed.User.Username)
			if err != nil {
				return err
			}
			m, write := flowengine.MergeSeedUser(existing, seed)
			rec, kn, ke := "", flowengine.NormalizeKey(seed.User.Username), ""
			id, deactivate := seenID, "0"
			if write {
				if rec, kn, ke, err = record(m); err != nil {
					return err
				}
				id = m.ID
				if existing != nil && existing.IsActive && !m.IsActive {
					deactivate = "1"
				}
			}
			args = append(args, id, rec, kn, ke, seenID, seenRec, deactivate)
		}
		res, err := applyConfigScript.Run(ctx, s.c, []string{s.k("config"), s.k("users")}, args...).Text()
		if err != nil {
			return wrap("apply config", err)
		}
		switch {
		case res == "ok":
			return s.Notify(ctx, "config")
		case res == "retry": // a seed user changed while we read: read again
			continue
		case res == "stale":
			return flowengine.ErrStale
		default:
			return fmt.Errorf("seed users: %s: %w", res, flowengine.ErrConflict)
		}
	}
	return fmt.Errorf("seed users kept changing while applying: %w", flowengine.ErrConflict)
}

// userRecordByName returns the ID and stored record of the user with that
// username, and the user decoded; all empty if there is none.
func (s *Store) userRecordByName(ctx context.Context, username string) (string, string, *flowengine.User, error) {
	id, err := s.c.Get(ctx, s.k("un:", flowengine.NormalizeKey(username))).Result()
	if errors.Is(err, goredis.Nil) {
		return "", "", nil, nil
	}
	if err != nil {
		return "", "", nil, wrap("get user", err)
	}
	rec, err := s.c.Get(ctx, s.k("u:", id)).Result()
	if errors.Is(err, goredis.Nil) {
		// Deleted between the two reads: none, as the script will confirm.
		return "", "", nil, nil
	}
	if err != nil {
		return "", "", nil, wrap("get user", err)
	}
	u, err := decodeUser(rec)
	if err != nil {
		return "", "", nil, err
	}
	return id, rec, u, nil
}

// Notify publishes a change notice to every replica.
func (s *Store) Notify(ctx context.Context, msg string) error {
	return wrap("publish", s.c.Publish(ctx, s.k(ChangeChannel), msg).Err())
}

// Subscribe calls fn with every change notice until ctx ends; it resubscribes by
// itself after a Redis outage.
func (s *Store) Subscribe(ctx context.Context, fn func(msg string)) {
	sub := s.c.Subscribe(ctx, s.k(ChangeChannel))
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				fn(m.Payload)
			}
		}
	}()
}

// SharedKeys returns the cookie keys every replica uses: the first replica to
// ask stores generate()'s keys, the others read them.
func (s *Store) SharedKeys(ctx context.Context, generate func() []string) ([]string, error) {
	raw, _ := json.Marshal(generate())
	if err := s.c.SetNX(ctx, s.k("secret_keys"), raw, 0).Err(); err != nil {
		return nil, wrap("store keys", err)
	}
	stored, err := s.c.Get(ctx, s.k("secret_keys")).Bytes()
	if err != nil {
		return nil, wrap("load keys", err)
	}
	var keys []string
	if err := json.Unmarshal(stored, &keys); err != nil || len(keys) < 2 {
		return nil, fmt.Errorf("stored secret keys are unreadable")
	}
	return keys, nil
}
