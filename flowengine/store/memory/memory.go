// Package memory is an in-process Store for tests and throwaway demos; everything
// is lost when the process ends.
package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

// Store keeps everything in maps behind one lock.
type Store struct {
	clock flowengine.Clock

	mu         sync.RWMutex
	users      map[string]*flowengine.User
	byName     map[string]string
	byEmail    map[string]string
	sessions   map[string]*flowengine.Session
	executions map[string]expiring
	counters   map[string]counter
	config     []byte
	lastSweep  time.Time
}

type expiring struct {
	data    []byte
	expires time.Time
}

type counter struct {
	n       int64
	expires time.Time
}

// New returns an empty store; clock may be nil for the system clock.
func New(clock flowengine.Clock) *Store {
	if clock == nil {
		clock = flowengine.SystemClock{}
	}
	return &Store{
		clock:      clock,
		users:      map[string]*flowengine.User{},
		byName:     map[string]string{},
		byEmail:    map[string]string{},
		sessions:   map[string]*flowengine.Session{},
		executions: map[string]expiring{},
		counters:   map[string]counter{},
	}
}

// Close does nothing.
func (s *Store) Close() error { return nil }

func copyUser(u *flowengine.User) *flowengine.User {
	// A full JSON round trip: attributes and devices hold maps and pointers
	// that a shallow copy would share with the stored record.
	raw, err := json.Marshal(u)
	if err != nil {
		panic("memory store: user does not encode: " + err.Error())
	}
	c := &flowengine.User{}
	if err := json.Unmarshal(raw, c); err != nil {
		panic("memory store: user does not decode: " + err.Error())
	}
	return c
}

// checkUnique reports ErrConflict if u's username or email belongs to another user.
func (s *Store) checkUnique(u *flowengine.User) error {
	if id, ok := s.byName[flowengine.NormalizeKey(u.Username)]; ok && id != u.ID {
		return fmt.Errorf("username %q: %w", u.Username, flowengine.ErrConflict)
	}
	if u.Email != "" {
		if id, ok := s.byEmail[flowengine.NormalizeKey(u.Email)]; ok && id != u.ID {
			return fmt.Errorf("email %q: %w", u.Email, flowengine.ErrConflict)
		}
	}
	return nil
}

func (s *Store) putUser(u *flowengine.User) {
	if old, ok := s.users[u.ID]; ok {
		delete(s.byName, flowengine.NormalizeKey(old.Username))
		delete(s.byEmail, flowengine.NormalizeKey(old.Email))
	}
	c := copyUser(u)
	s.users[c.ID] = c
	s.byName[flowengine.NormalizeKey(c.Username)] = c.ID
	if c.Email != "" {
		s.byEmail[flowengine.NormalizeKey(c.Email)] = c.ID
	}
}

// CreateUser implements flowengine.UserStore.
func (s *Store) CreateUser(_ context.Context, u *flowengine.User) error {
	if u.ID == "" || flowengine.NormalizeKey(u.Username) == "" {
		return fmt.Errorf("user needs an id and a username")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return fmt.Errorf("user id %q: %w", u.ID, flowengine.ErrConflict)
	}
	if err := s.checkUnique(u); err != nil {
		return err
	}
	s.putUser(u)
	return nil
}

// UpdateUser implements flowengine.UserStore.
func (s *Store) UpdateUser(_ context.Context, u *flowengine.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[u.ID]
	if !ok {
		return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrNotFound)
	}
	if err := s.checkUnique(u); err != nil {
		return err
	}
	s.putUserEndingSessions(old, u)
	return nil
}

// UpdateUserIf implements flowengine.UserStore: checked and written under the
// one lock, compared by JSON encoding (the form the other stores keep).
func (s *Store) UpdateUserIf(_ context.Context, u, prev *flowengine.User) error {
	want, err := json.Marshal(prev)
	if err != nil {
		return fmt.Errorf("encoding user: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[u.ID]
	if !ok {
		return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrNotFound)
	}
	if have, err := json.Marshal(old); err != nil || !bytes.Equal(have, want) {
		return fmt.Errorf("user %q: %w", u.ID, flowengine.ErrChanged)
	}
	if err := s.checkUnique(u); err != nil {
		return err
	}
	s.putUserEndingSessions(old, u)
	return nil
}

// putUserEndingSessions writes u over old (nil if new) and, when the write
// deactivates the user, deletes their sessions under the same lock: a
// deactivated user must not stay signed in.
func (s *Store) putUserEndingSessions(old, u *flowengine.User) {
	deactivated := old != nil && old.IsActive && !u.IsActive
	s.putUser(u)
	if deactivated {
		s.deleteUserSessions(u.ID, nil)
	}
}

func (s *Store) userBy(index map[string]string, key string) (*flowengine.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := index[flowengine.NormalizeKey(key)]
	if !ok {
		return nil, flowengine.ErrNotFound
	}
	return copyUser(s.users[id]), nil
}

// GetUser implements flowengine.UserStore.
func (s *Store) GetUser(_ context.Context, id string) (*flowengine.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return nil, flowengine.ErrNotFound
	}
	return copyUser(u), nil
}

// GetUserByUsername implements flowengine.UserStore.
func (s *Store) GetUserByUsername(_ context.Context, name string) (*flowengine.User, error) {
	return s.userBy(s.byName, name)
}

// GetUserByEmail implements flowengine.UserStore.
func (s *Store) GetUserByEmail(_ context.Context, email string) (*flowengine.User, error) {
	if flowengine.NormalizeKey(email) == "" {
		return nil, flowengine.ErrNotFound
	}
	return s.userBy(s.byEmail, email)
}

// ListUsers implements flowengine.UserStore.
func (s *Store) ListUsers(context.Context) ([]*flowengine.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*flowengine.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, copyUser(u))
	}
	sort.Slice(out, func(i, j int) bool {
		return flowengine.NormalizeKey(out[i].Username) < flowengine.NormalizeKey(out[j].Username)
	})
	return out, nil
}

// DeleteUser implements flowengine.UserStore.
func (s *Store) DeleteUser(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return flowengine.ErrNotFound
	}
	delete(s.users, id)
	delete(s.byName, flowengine.NormalizeKey(u.Username))
	delete(s.byEmail, flowengine.NormalizeKey(u.Email))
	s.deleteUserSessions(id, nil)
	return nil
}

// CreateSession implements flowengine.SessionStore.
func (s *Store) CreateSession(_ context.Context, sess *flowengine.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.ID]; ok {
		return flowengine.ErrConflict
	}
	c := *sess
	s.sessions[sess.ID] = &c
	return nil
}

// GetSession implements flowengine.SessionStore.
func (s *Store) GetSession(_ context.Context, id string) (*flowengine.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[id]
	if !ok || !s.clock.Now().Before(sess.ExpiresAt) {
		return nil, flowengine.ErrNotFound
	}
	c := *sess
	return &c, nil
}

// TouchSession implements flowengine.SessionStore.
func (s *Store) TouchSession(_ context.Context, id string, lastSeen, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !s.clock.Now().Before(sess.ExpiresAt) {
		return flowengine.ErrNotFound
	}
	sess.LastSeen, sess.ExpiresAt = lastSeen, expiresAt
	return nil
}

// DeleteSession implements flowengine.SessionStore.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// DeleteUserSessions implements flowengine.SessionStore.
func (s *Store) DeleteUserSessions(_ context.Context, userID string, keep ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteUserSessions(userID, keep)
	return nil
}

// deleteUserSessions needs s.mu held for writing.
func (s *Store) deleteUserSessions(userID string, keep []string) {
	for id, sess := range s.sessions {
		if sess.UserID == userID && !contains(keep, id) {
			delete(s.sessions, id)
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// ListUserSessions implements flowengine.SessionStore.
func (s *Store) ListUserSessions(_ context.Context, userID string) ([]*flowengine.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.clock.Now()
	var out []*flowengine.Session
	for _, sess := range s.sessions {
		if sess.UserID == userID && now.Before(sess.ExpiresAt) {
			c := *sess
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// PutExecution implements flowengine.ExecutionStore.
func (s *Store) PutExecution(_ context.Context, id string, data []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if now.Sub(s.lastSweep) > time.Minute { // so abandoned flows do not pile up
		s.lastSweep = now
		for k, v := range s.executions {
			if !now.Before(v.expires) {
				delete(s.executions, k)
			}
		}
	}
	s.executions[id] = expiring{data: append([]byte(nil), data...), expires: now.Add(ttl)}
	return nil
}

// GetExecution implements flowengine.ExecutionStore.
func (s *Store) GetExecution(_ context.Context, id string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.executions[id]
	if !ok || !s.clock.Now().Before(e.expires) {
		return nil, flowengine.ErrNotFound
	}
	return append([]byte(nil), e.data...), nil
}

// DeleteExecution implements flowengine.ExecutionStore.
func (s *Store) DeleteExecution(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.executions, id)
	return nil
}

// LoadConfig implements flowengine.ConfigStore.
func (s *Store) LoadConfig(context.Context) (*flowengine.Config, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cfg := &flowengine.Config{}
	if s.config == nil {
		return cfg, "", nil
	}
	if err := json.Unmarshal(s.config, cfg); err != nil {
		return nil, "", fmt.Errorf("decoding config: %w", err)
	}
	return cfg, flowengine.ConfigRevision(s.config), nil
}

// ApplyConfig implements flowengine.ConfigStore.
func (s *Store) ApplyConfig(_ context.Context, base string, cfg *flowengine.Config, users []flowengine.SeedUser) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if flowengine.ConfigRevision(s.config) != base {
		return flowengine.ErrStale
	}
	// Resolve every user first so a conflict leaves everything as it was.
	planned := make([]seedWrite, 0, len(users))
	for _, seed := range users {
		old := s.existingByName(seed.User.Username)
		m, ok := flowengine.MergeSeedUser(old, seed)
		if !ok {
			continue
		}
		if err := s.checkUniqueAgainst(m, planned); err != nil {
			return err
		}
		planned = append(planned, seedWrite{old, m})
	}
	for _, w := range planned {
		s.putUserEndingSessions(w.old, w.user)
	}
	s.config = raw
	return nil
}

func (s *Store) existingByName(name string) *flowengine.User {
	if id, ok := s.byName[flowengine.NormalizeKey(name)]; ok {
		return copyUser(s.users[id])
	}
	return nil
}

// seedWrite is one user ApplyConfig will store, over old (nil if new).
type seedWrite struct{ old, user *flowengine.User }

func (s *Store) checkUniqueAgainst(u *flowengine.User, planned []seedWrite) error {
	if err := s.checkUnique(u); err != nil {
		return err
	}
	for _, w := range planned {
		p := w.user
		if u.Email != "" && flowengine.NormalizeKey(p.Email) == flowengine.NormalizeKey(u.Email) {
			return fmt.Errorf("email %q: %w", u.Email, flowengine.ErrConflict)
		}
	}
	return nil
}

// IncrCounter implements flowengine.CounterStore.
func (s *Store) IncrCounter(_ context.Context, key string, window time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	c, ok := s.counters[key]
	if !ok || !now.Before(c.expires) {
		c = counter{expires: now.Add(window)}
	}
	c.n++
	s.counters[key] = c
	return c.n, nil
}

// GetCounter implements flowengine.CounterStore.
func (s *Store) GetCounter(_ context.Context, key string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.counters[key]
	if !ok || !s.clock.Now().Before(c.expires) {
		return 0, nil
	}
	return c.n, nil
}

// DeleteCounter implements flowengine.CounterStore.
func (s *Store) DeleteCounter(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.counters, key)
	return nil
}

var _ flowengine.Store = (*Store)(nil)

// CountSessions returns how many sessions are held, expired ones included until
// they are next looked at. For the sessions gauge.
func (s *Store) CountSessions(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.sessions)), nil
}
