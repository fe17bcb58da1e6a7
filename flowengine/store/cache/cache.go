// Package cache wraps a Store with a short-lived in-process cache of sessions and
// users, the two reads every proxied request makes. Writes through the wrapper
// invalidate at once; entries also expire after a TTL, which bounds how stale a
// cache can be when another process writes to a shared store.
package cache

import (
	"context"
	"sync"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

// Store is a caching flowengine.Store.
type Store struct {
	flowengine.Store
	ttl   time.Duration
	limit int
	now   func() time.Time

	// OnInvalidate, if set, is told of every session ("session", id) and user
	// ("user", id) this cache drops because of a write, so other processes
	// sharing the store can drop theirs (ForgetSession, ForgetUser).
	OnInvalidate func(kind, id string)

	mu       sync.RWMutex
	sessions map[string]sessionEntry
	byUser   map[string]map[string]struct{}
	users    map[string]userEntry
}

type sessionEntry struct {
	s       *flowengine.Session // never changed once cached
	fetched time.Time
}

type userEntry struct {
	u       *flowengine.User
	fetched time.Time
}

// New wraps inner. ttl bounds staleness (e.g. 1s); limit bounds the number of
// cached sessions and of cached users (the cache is dropped when full).
func New(inner flowengine.Store, ttl time.Duration, limit int) *Store {
	s := &Store{Store: inner, ttl: ttl, limit: limit, now: time.Now}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.sessions = map[string]sessionEntry{}
	s.byUser = map[string]map[string]struct{}{}
	s.users = map[string]userEntry{}
}

// GetSession implements flowengine.SessionStore from the cache when fresh.
func (s *Store) GetSession(ctx context.Context, id string) (*flowengine.Session, error) {
	now := s.now()
	s.mu.RLock()
	e, ok := s.sessions[id]
	s.mu.RUnlock()
	if ok && now.Sub(e.fetched) < s.ttl {
		if !now.Before(e.s.ExpiresAt) {
			return nil, flowengine.ErrNotFound
		}
		c := *e.s
		return &c, nil
	}
	sess, err := s.Store.GetSession(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.sessions) >= s.limit {
		s.sessions, s.byUser = map[string]sessionEntry{}, map[string]map[string]struct{}{}
	}
	cached := *sess
	s.sessions[id] = sessionEntry{s: &cached, fetched: now}
	ids := s.byUser[sess.UserID]
	if ids == nil {
		ids = map[string]struct{}{}
		s.byUser[sess.UserID] = ids
	}
	ids[id] = struct{}{}
	s.mu.Unlock()
	return sess, nil
}

// GetUser implements flowengine.UserStore from the cache when fresh.
func (s *Store) GetUser(ctx context.Context, id string) (*flowengine.User, error) {
	now := s.now()
	s.mu.RLock()
	e, ok := s.users[id]
	s.mu.RUnlock()
	if ok && now.Sub(e.fetched) < s.ttl {
		return copyUser(e.u), nil
	}
	u, err := s.Store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.users) >= s.limit {
		s.users = map[string]userEntry{}
	}
	s.users[id] = userEntry{u: copyUser(u), fetched: now}
	s.mu.Unlock()
	return u, nil
}

// copyUser keeps callers from changing the cached user; attributes are shared
// read-only.
func copyUser(u *flowengine.User) *flowengine.User {
	c := *u
	c.Groups = append([]string(nil), u.Groups...)
	return &c
}

func (s *Store) forgetSession(id string) {
	s.mu.Lock()
	if e, ok := s.sessions[id]; ok {
		delete(s.byUser[e.s.UserID], id)
	}
	delete(s.sessions, id)
	s.mu.Unlock()
}

func (s *Store) forgetUser(id string, sessions bool) {
	s.mu.Lock()
	delete(s.users, id)
	if sessions {
		for sid := range s.byUser[id] {
			delete(s.sessions, sid)
		}
		delete(s.byUser, id)
	}
	s.mu.Unlock()
}

// ForgetSession drops a cached session (another process changed it).
func (s *Store) ForgetSession(id string) { s.forgetSession(id) }

// ForgetUser drops a cached user and the user's cached sessions.
func (s *Store) ForgetUser(id string) { s.forgetUser(id, true) }

func (s *Store) tell(err error, kind, id string) {
	if err == nil && s.OnInvalidate != nil {
		s.OnInvalidate(kind, id)
	}
}

// TouchSession implements flowengine.SessionStore.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	err := s.Store.TouchSession(ctx, id, lastSeen, expiresAt)
	s.forgetSession(id)
	return err
}

// DeleteSession implements flowengine.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	s.forgetSession(id) // before and after, so no reader re-caches it in between
	err := s.Store.DeleteSession(ctx, id)
	s.forgetSession(id)
	s.tell(err, "session", id)
	return err
}

// DeleteUserSessions implements flowengine.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep ...string) error {
	s.forgetUser(userID, true)
	err := s.Store.DeleteUserSessions(ctx, userID, keep...)
	s.forgetUser(userID, true)
	s.tell(err, "user", userID)
	return err
}

// UpdateUser implements flowengine.UserStore. Deactivating a user deletes their
// sessions in the store, so the cached ones go too.
func (s *Store) UpdateUser(ctx context.Context, u *flowengine.User) error {
	if !u.IsActive {
		s.forgetUser(u.ID, true)
	}
	err := s.Store.UpdateUser(ctx, u)
	s.forgetUser(u.ID, !u.IsActive)
	s.tell(err, "user", u.ID)
	return err
}

// UpdateUserIf implements flowengine.UserStore, invalidating as UpdateUser
// does. The cached user goes whatever the outcome: after ErrChanged it may
// well be stale.
func (s *Store) UpdateUserIf(ctx context.Context, u, prev *flowengine.User) error {
	if !u.IsActive {
		s.forgetUser(u.ID, true)
	}
	err := s.Store.UpdateUserIf(ctx, u, prev)
	s.forgetUser(u.ID, !u.IsActive)
	s.tell(err, "user", u.ID)
	return err
}

// DeleteUser implements flowengine.UserStore.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	s.forgetUser(id, true)
	err := s.Store.DeleteUser(ctx, id)
	s.forgetUser(id, true)
	s.tell(err, "user", id)
	return err
}

// ApplyConfig implements flowengine.ConfigStore. Authoritative seed users may
// have changed, and a deactivated one lost their sessions: the whole cache goes,
// and other processes are told of each such user.
func (s *Store) ApplyConfig(ctx context.Context, base string, cfg *flowengine.Config, users []flowengine.SeedUser) error {
	err := s.Store.ApplyConfig(ctx, base, cfg, users)
	s.mu.Lock()
	s.reset()
	s.mu.Unlock()
	if err == nil && s.OnInvalidate != nil {
		for _, seed := range users {
			if !seed.Authoritative {
				continue // creates a missing user at most: nothing cached to drop
			}
			if u, err := s.Store.GetUserByUsername(ctx, seed.User.Username); err == nil {
				s.OnInvalidate("user", u.ID)
			}
		}
	}
	return err
}

var _ flowengine.Store = (*Store)(nil)

// SessionUser returns a live session and its user for read-only use: the values
// may be shared with other callers and must not be changed. It is the per-request
// path of the gateway, so a cache hit allocates nothing.
func (s *Store) SessionUser(ctx context.Context, id string) (*flowengine.Session, *flowengine.User, error) {
	now := s.now()
	s.mu.RLock()
	se, okS := s.sessions[id]
	var ue userEntry
	okU := false
	if okS {
		ue, okU = s.users[se.s.UserID]
	}
	s.mu.RUnlock()
	if okS && okU && now.Sub(se.fetched) < s.ttl && now.Sub(ue.fetched) < s.ttl {
		if !now.Before(se.s.ExpiresAt) {
			return nil, nil, flowengine.ErrNotFound
		}
		return se.s, ue.u, nil
	}
	sess, err := s.GetSession(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.GetUser(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	return sess, u, nil
}
