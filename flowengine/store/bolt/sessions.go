package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/flowgate/flowgate/flowengine"
)

func userSessionKey(userID, sessionID string) []byte {
	return []byte(userID + "\x00" + sessionID)
}

// CreateSession implements flowengine.SessionStore.
func (s *Store) CreateSession(_ context.Context, sess *flowengine.Session) error {
	raw, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return wrapErr("create session", s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(sess.ID)) != nil {
			return flowengine.ErrConflict
		}
		if err := b.Put([]byte(sess.ID), raw); err != nil {
			return err
		}
		return tx.Bucket(bucketUserSessions).Put(userSessionKey(sess.UserID, sess.ID), nil)
	}))
}

// GetSession implements flowengine.SessionStore with a read-only transaction.
func (s *Store) GetSession(_ context.Context, id string) (*flowengine.Session, error) {
	sess := &flowengine.Session{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get([]byte(id))
		if v == nil {
			return flowengine.ErrNotFound
		}
		return json.Unmarshal(v, sess)
	})
	if err != nil {
		return nil, wrapErr("get session", err)
	}
	if !s.clock.Now().Before(sess.ExpiresAt) {
		return nil, flowengine.ErrNotFound
	}
	return sess, nil
}

// TouchSession implements flowengine.SessionStore.
func (s *Store) TouchSession(_ context.Context, id string, lastSeen, expiresAt time.Time) error {
	return wrapErr("touch session", s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		v := b.Get([]byte(id))
		if v == nil {
			return flowengine.ErrNotFound
		}
		var sess flowengine.Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return fmt.Errorf("decoding session: %w", err)
		}
		if !s.clock.Now().Before(sess.ExpiresAt) {
			return flowengine.ErrNotFound
		}
		sess.LastSeen, sess.ExpiresAt = lastSeen, expiresAt
		raw, err := json.Marshal(&sess)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), raw)
	}))
}

func deleteSession(tx *bbolt.Tx, id, userID string) error {
	if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
		return err
	}
	return tx.Bucket(bucketUserSessions).Delete(userSessionKey(userID, id))
}

// DeleteSession implements flowengine.SessionStore.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	return wrapErr("delete session", s.db.Update(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get([]byte(id))
		if v == nil {
			return nil
		}
		var sess flowengine.Session
		_ = json.Unmarshal(v, &sess)
		return deleteSession(tx, id, sess.UserID)
	}))
}

func deleteUserSessions(tx *bbolt.Tx, userID string, keep []string) error {
	prefix := []byte(userID + "\x00")
	var ids []string
	c := tx.Bucket(bucketUserSessions).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix):])
		kept := false
		for _, x := range keep {
			kept = kept || x == id
		}
		if !kept {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if err := deleteSession(tx, id, userID); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUserSessions implements flowengine.SessionStore.
func (s *Store) DeleteUserSessions(_ context.Context, userID string, keep ...string) error {
	return wrapErr("delete user sessions", s.db.Update(func(tx *bbolt.Tx) error {
		return deleteUserSessions(tx, userID, keep)
	}))
}

// ListUserSessions implements flowengine.SessionStore.
func (s *Store) ListUserSessions(_ context.Context, userID string) ([]*flowengine.Session, error) {
	now := s.clock.Now()
	prefix := []byte(userID + "\x00")
	var out []*flowengine.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		sessions := tx.Bucket(bucketSessions)
		c := tx.Bucket(bucketUserSessions).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := sessions.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			sess := &flowengine.Session{}
			if err := json.Unmarshal(v, sess); err != nil {
				return fmt.Errorf("decoding session: %w", err)
			}
			if now.Before(sess.ExpiresAt) {
				out = append(out, sess)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, wrapErr("list sessions", err)
}

// CountSessions returns how many sessions the file holds; expired ones count
// until the sweeper removes them (within a minute). For the sessions gauge.
func (s *Store) CountSessions(context.Context) (int64, error) {
	var n int
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketSessions).Stats().KeyN
		return nil
	})
	return int64(n), wrapErr("count sessions", err)
}
