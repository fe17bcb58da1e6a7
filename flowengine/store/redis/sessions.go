package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowgate/flowgate/flowengine"
)

// CreateSession implements flowengine.SessionStore. The record expires in Redis
// when the session does.
func (s *Store) CreateSession(ctx context.Context, sess *flowengine.Session) error {
	raw, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	var set *goredis.BoolCmd
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		set = p.SetNX(ctx, s.k("s:", sess.ID), raw, s.ttlUntil(sess.ExpiresAt))
		p.SAdd(ctx, s.k("us:", sess.UserID), sess.ID)
		return nil
	})
	if err != nil {
		return wrap("create session", err)
	}
	if !set.Val() {
		return flowengine.ErrConflict
	}
	return nil
}

func (s *Store) getSession(ctx context.Context, id string) (*flowengine.Session, error) {
	raw, err := s.c.Get(ctx, s.k("s:", id)).Bytes()
	if err != nil {
		return nil, wrap("get session", err)
	}
	sess := &flowengine.Session{}
	if err := json.Unmarshal(raw, sess); err != nil {
		return nil, fmt.Errorf("decoding session: %v", err)
	}
	return sess, nil
}

// GetSession implements flowengine.SessionStore: one GET.
func (s *Store) GetSession(ctx context.Context, id string) (*flowengine.Session, error) {
	sess, err := s.getSession(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.clock.Now().Before(sess.ExpiresAt) {
		return nil, flowengine.ErrNotFound
	}
	return sess, nil
}

// TouchSession implements flowengine.SessionStore.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	sess, err := s.GetSession(ctx, id)
	if err != nil {
		return err
	}
	sess.LastSeen, sess.ExpiresAt = lastSeen, expiresAt
	raw, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	// XX: a session revoked meanwhile stays revoked.
	ok, err := s.c.SetXX(ctx, s.k("s:", id), raw, s.ttlUntil(expiresAt)).Result()
	if err != nil {
		return wrap("touch session", err)
	}
	if !ok {
		return flowengine.ErrNotFound
	}
	return nil
}

// DeleteSession implements flowengine.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	sess, err := s.getSession(ctx, id)
	if err == flowengine.ErrNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.k("s:", id))
		p.SRem(ctx, s.k("us:", sess.UserID), id)
		return nil
	})
	return wrap("delete session", err)
}

// DeleteUserSessions implements flowengine.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep ...string) error {
	args := []any{s.prefix}
	for _, k := range keep {
		args = append(args, k)
	}
	return wrap("revoke sessions", revokeSessionsScript.Run(ctx, s.c, []string{s.k("us:", userID)}, args...).Err())
}

// ListUserSessions implements flowengine.SessionStore.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]*flowengine.Session, error) {
	ids, err := s.c.SMembers(ctx, s.k("us:", userID)).Result()
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	var out []*flowengine.Session
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.k("s:", id)
	}
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	now := s.clock.Now()
	var gone []any
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i]) // expired in Redis: drop it from the index
			continue
		}
		sess := &flowengine.Session{}
		if json.Unmarshal([]byte(str), sess) == nil && now.Before(sess.ExpiresAt) {
			out = append(out, sess)
		}
	}
	if len(gone) > 0 {
		s.c.SRem(ctx, s.k("us:", userID), gone...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}
