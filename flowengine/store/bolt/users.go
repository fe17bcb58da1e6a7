package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	bbolt "go.etcd.io/bbolt"

	"github.com/flowgate/flowgate/flowengine"
)

func getUser(tx *bbolt.Tx, id []byte) (*flowengine.User, error) {
	v := tx.Bucket(bucketUsers).Get(id)
	if v == nil {
		return nil, flowengine.ErrNotFound
	}
	u := &flowengine.User{}
	if err := json.Unmarshal(v, u); err != nil {
		return nil, fmt.Errorf("decoding user: %w", err)
	}
	return u, nil
}

// putUser writes u and its indexes, refusing a username or email of another user.
func putUser(tx *bbolt.Tx, u *flowengine.User) error {
	if u.ID == "" || flowengine.NormalizeKey(u.Username) == "" {
		return fmt.Errorf("user needs an id and a username")
	}
	names, emails := tx.Bucket(bucketUsersByName), tx.Bucket(bucketUsersByEmail)
	id := []byte(u.ID)
	name := []byte(flowengine.NormalizeKey(u.Username))
	if owner := names.Get(name); owner != nil && !bytes.Equal(owner, id) {
		return fmt.Errorf("username %q: %w", u.Username, flowengine.ErrConflict)
	}
	email := []byte(flowengine.NormalizeKey(u.Email))
	if len(email) > 0 {
		if owner := emails.Get(email); owner != nil && !bytes.Equal(owner, id) {
			return fmt.Errorf("email %q: %w", u.Email, flowengine.ErrConflict)
		}
	}
	if old, err := getUser(tx, id); err == nil {
		if err := names.Delete([]byte(flowengine.NormalizeKey(old.Username))); err != nil {
			return err
		}
		if old.Email != "" {
			if err := emails.Delete([]byte(flowengine.NormalizeKey(old.Email))); err != nil {
				return err
			}
		}
	}
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketUsers).Put(id, raw); err != nil {
		return err
	}
	if err := names.Put(name, id); err != nil {
		return err
	}
	if len(email) > 0 {
		return emails.Put(email, id)
	}
	return nil
}

// CreateUser implements flowengine.UserStore.
func (s *Store) CreateUser(_ context.Context, u *flowengine.User) error {
	return wrapErr("create user", s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user id %q: %w", u.ID, flowengine.ErrConflict)
		}
		return putUser(tx, u)
	}))
}

// UpdateUser implements flowengine.UserStore.
func (s *Store) UpdateUser(_ context.Context, u *flowengine.User) error {
	return wrapErr("update user", s.db.Update(func(tx *bbolt.Tx) error {
		old, err := getUser(tx, []byte(u.ID))
		if err != nil {
			return fmt.Errorf("user %q: %w", u.ID, err)
		}
		return putUserEndingSessions(tx, old, u)
	}))
}

// UpdateUserIf implements flowengine.UserStore: the check and the write are one
// transaction, so no other write can land between them.
func (s *Store) UpdateUserIf(_ context.Context, u, prev *flowengine.User) error {
	want, err := json.Marshal(prev)
	if err != nil {
		return fmt.Errorf("encoding user: %w", err)
	}
	return wrapErr("update user", s.db.Update(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketUsers).Get([]byte(u.ID))
		if raw == nil {
			return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrNotFound)
		}
		old, err := getUser(tx, []byte(u.ID))
		if err != nil {
			return err
		}
		if !bytes.Equal(raw, want) {
			// Compare re-encoded, not the bytes as stored: a record written by
			// an older version (other fields, other encoding of a number) is
			// still the one the caller read if it decodes to the same user.
			again, err := json.Marshal(old)
			if err != nil {
				return fmt.Errorf("encoding user: %w", err)
			}
			if !bytes.Equal(again, want) {
				return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrChanged)
			}
		}
		return putUserEndingSessions(tx, old, u)
	}))
}

// putUserEndingSessions writes u over old (nil if new) and, when the write
// deactivates the user, deletes their sessions in the same transaction: a
// deactivated user must not stay signed in.
func putUserEndingSessions(tx *bbolt.Tx, old, u *flowengine.User) error {
	if err := putUser(tx, u); err != nil {
		return err
	}
	if old != nil && old.IsActive && !u.IsActive {
		return deleteUserSessions(tx, u.ID, nil)
	}
	return nil
}

// GetUser implements flowengine.UserStore.
func (s *Store) GetUser(_ context.Context, id string) (u *flowengine.User, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		u, err = getUser(tx, []byte(id))
		return err
	})
	return u, wrapErr("get user", err)
}

func (s *Store) userBy(index []byte, key string) (u *flowengine.User, err error) {
	k := flowengine.NormalizeKey(key)
	if k == "" {
		return nil, flowengine.ErrNotFound
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(index).Get([]byte(k))
		if id == nil {
			return flowengine.ErrNotFound
		}
		u, err = getUser(tx, id)
		return err
	})
	return u, wrapErr("get user", err)
}

// GetUserByUsername implements flowengine.UserStore.
func (s *Store) GetUserByUsername(_ context.Context, name string) (*flowengine.User, error) {
	return s.userBy(bucketUsersByName, name)
}

// GetUserByEmail implements flowengine.UserStore.
func (s *Store) GetUserByEmail(_ context.Context, email string) (*flowengine.User, error) {
	return s.userBy(bucketUsersByEmail, email)
}

// ListUsers implements flowengine.UserStore.
func (s *Store) ListUsers(context.Context) ([]*flowengine.User, error) {
	var out []*flowengine.User
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u := &flowengine.User{}
			if err := json.Unmarshal(v, u); err != nil {
				return fmt.Errorf("decoding user: %w", err)
			}
			out = append(out, u)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		return flowengine.NormalizeKey(out[i].Username) < flowengine.NormalizeKey(out[j].Username)
	})
	return out, wrapErr("list users", err)
}

// DeleteUser implements flowengine.UserStore.
func (s *Store) DeleteUser(_ context.Context, id string) error {
	return wrapErr("delete user", s.db.Update(func(tx *bbolt.Tx) error {
		u, err := getUser(tx, []byte(id))
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsersByName).Delete([]byte(flowengine.NormalizeKey(u.Username))); err != nil {
			return err
		}
		if u.Email != "" {
			if err := tx.Bucket(bucketUsersByEmail).Delete([]byte(flowengine.NormalizeKey(u.Email))); err != nil {
				return err
			}
		}
		return deleteUserSessions(tx, id, nil)
	}))
}

// ApplyConfig implements flowengine.ConfigStore: config and seed users in one transaction.
func (s *Store) ApplyConfig(_ context.Context, base string, cfg *flowengine.Config, users []flowengine.SeedUser) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	return wrapErr("apply config", s.db.Update(func(tx *bbolt.Tx) error {
		if flowengine.ConfigRevision(tx.Bucket(bucketConfig).Get(keyConfig)) != base {
			return flowengine.ErrStale
		}
		for _, seed := range users {
			var existing *flowengine.User
			if id := tx.Bucket(bucketUsersByName).Get([]byte(flowengine.NormalizeKey(seed.User.Username))); id != nil {
				u, err := getUser(tx, id)
				if err != nil {
					return fmt.Errorf("seed user %q: %w", seed.User.Username, err)
				}
				existing = u
			}
			merged, write := flowengine.MergeSeedUser(existing, seed)
			if !write {
				continue
			}
			if err := putUserEndingSessions(tx, existing, merged); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketConfig).Put(keyConfig, raw)
	}))
}

// LoadConfig implements flowengine.ConfigStore.
func (s *Store) LoadConfig(context.Context) (*flowengine.Config, string, error) {
	cfg := &flowengine.Config{}
	var rev string
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketConfig).Get(keyConfig)
		if v == nil {
			return nil
		}
		rev = flowengine.ConfigRevision(v)
		return json.Unmarshal(v, cfg)
	})
	if err != nil {
		return nil, "", wrapErr("load config", err)
	}
	return cfg, rev, nil
}
