package flowengine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"time"
)

// Store is everything flowgate persists. Backends: flowengine/store/bolt (embedded
// default), flowengine/store/redis (several replicas) and flowengine/store/memory;
// flowengine/store/storetest holds the conformance suite they all pass.
type Store interface {
	UserStore
	SessionStore
	ExecutionStore
	ConfigStore
	CounterStore
	Close() error
}

// UserStore keeps accounts. Usernames and emails are unique case-insensitively.
type UserStore interface {
	// CreateUser stores a new user; ErrConflict if the username or email is taken.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser replaces a user by ID; ErrConflict if the new username or email is
	// taken. A write that deactivates the user ends their sessions in the same step.
	UpdateUser(ctx context.Context, u *User) error
	// UpdateUserIf is UpdateUser (same indexes, same end of sessions on a
	// deactivation) provided the stored user is still exactly prev, the record
	// the caller read and changed into u, compared as the store encodes it; in
	// one atomic step. ErrChanged if another write changed it since,
	// ErrNotFound if it is gone; on error nothing was changed. For writes that
	// must not undo an operator's change made after the read (a login's
	// LastLogin or hash upgrade over a deactivation or a new password).
	UpdateUserIf(ctx context.Context, u, prev *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByUsername and GetUserByEmail match case-insensitively.
	GetUserByUsername(ctx context.Context, username string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns every user ordered by username.
	ListUsers(ctx context.Context) ([]*User, error)
	// DeleteUser removes the user and every session of theirs.
	DeleteUser(ctx context.Context, id string) error
}

// SessionStore keeps login sessions. An expired session is not found.
type SessionStore interface {
	CreateSession(ctx context.Context, s *Session) error
	// GetSession must not write: it runs on every proxied request.
	GetSession(ctx context.Context, id string) (*Session, error)
	// TouchSession records activity and moves the expiry (sliding sessions).
	TouchSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions revokes every session of a user, except the IDs in keep.
	DeleteUserSessions(ctx context.Context, userID string, keep ...string) error
	// ListUserSessions returns the user's live sessions, oldest first.
	ListUserSessions(ctx context.Context, userID string) ([]*Session, error)
}

// ExecutionStore keeps in-progress flow executions as opaque bytes with a TTL, so
// any process sharing the store can continue one.
type ExecutionStore interface {
	PutExecution(ctx context.Context, id string, data []byte, ttl time.Duration) error
	GetExecution(ctx context.Context, id string) ([]byte, error)
	DeleteExecution(ctx context.Context, id string) error
}

// ConfigStore keeps flows, stages and policies.
type ConfigStore interface {
	// LoadConfig returns the stored configuration (empty if none was saved) and its
	// revision (ConfigRevision of the stored bytes).
	LoadConfig(ctx context.Context) (*Config, string, error)
	// ApplyConfig replaces the configuration and applies seed users (by username,
	// as MergeSeedUser decides; a user it deactivates loses their sessions) in one
	// atomic step, provided the stored configuration is still at revision base;
	// ErrStale if another writer changed it since. On error nothing was changed.
	ApplyConfig(ctx context.Context, base string, cfg *Config, users []SeedUser) error
}

// ConfigRevision names a stored configuration by its bytes: "" when none is
// stored, else the hex SHA-1 of the encoding (Redis scripts compute the same
// with redis.sha1hex). Equal contents give equal revisions, which is all a
// merge needs: it depends only on what it merges onto.
func ConfigRevision(raw []byte) string {
	if raw == nil {
		return ""
	}
	sum := sha1.Sum(raw)
	return hex.EncodeToString(sum[:])
}

// CounterStore keeps expiring counters (brute-force regulation).
type CounterStore interface {
	// IncrCounter adds one to key and returns the new count. A counter that did not
	// exist, or had expired, starts at one and expires window from now.
	IncrCounter(ctx context.Context, key string, window time.Duration) (int64, error)
	// GetCounter returns the current count (0 if absent or expired).
	GetCounter(ctx context.Context, key string) (int64, error)
	DeleteCounter(ctx context.Context, key string) error
}

// Mailer sends mail for the email stage.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Mail is one message.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Regulator refuses attempts for accounts or client IPs that failed too often.
// Keys come from RegulationKey, so every alias of one account shares a count.
type Regulator interface {
	// Reserve counts an attempt before the secret is checked and reports whether
	// it may go ahead; false means locked (or over the limit already).
	Reserve(ctx context.Context, key, clientIP string) (bool, error)
	// Failed records that a reserved attempt failed.
	Failed(ctx context.Context, key, clientIP string) error
	// Succeeded clears the account's failures.
	Succeeded(ctx context.Context, key string) error
}
