package flowengine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Brute-force regulation defaults.
const (
	DefaultUserFailures = 5                // failures for one account…
	DefaultIPFailures   = 50               // …or from one client IP…
	DefaultFailWindow   = 10 * time.Minute // …within this window lock it
	DefaultUserLock     = 5 * time.Minute  // first lock of an account; doubles on repeat
	DefaultMaxUserLock  = time.Hour
	DefaultIPLock       = 10 * time.Minute
)

// CounterRegulator is the Regulator on a CounterStore: with a shared store
// (Redis) every replica counts the same attempts, so spreading them gains an
// attacker nothing. Accounts are counted whether or not they exist.
type CounterRegulator struct {
	Counters     CounterStore
	UserFailures int64
	IPFailures   int64
	Window       time.Duration
	UserLock     time.Duration
	MaxUserLock  time.Duration
	IPLock       time.Duration
	// Observer hears every lock set (EventLockout); may be nil.
	Observer Observer
}

// NewRegulator returns a regulator with the default limits.
func NewRegulator(c CounterStore) *CounterRegulator {
	return &CounterRegulator{Counters: c, UserFailures: DefaultUserFailures, IPFailures: DefaultIPFailures,
		Window: DefaultFailWindow, UserLock: DefaultUserLock, MaxUserLock: DefaultMaxUserLock, IPLock: DefaultIPLock}
}

// RegulationKey names the account an attempt counts against: the resolved user,
// so a username, an email and any spelling of them share one counter; for an
// unknown identifier its normalised form (NFKC, case-folded), so "Ghost" and
// "ghost" cannot be tried five times each.
func RegulationKey(u *User, identifier string) string {
	if u != nil {
		return "id:" + u.ID
	}
	return "name:" + NormalizeIdentifier(identifier)
}

// NormalizeIdentifier folds what a user typed to identify: NFKC, trimmed,
// case-folded.
func NormalizeIdentifier(s string) string {
	return cases.Fold().String(norm.NFKC.String(strings.TrimSpace(s)))
}

func userKey(kind, key string) string { return "regulator:" + kind + ":u:" + key }
func ipKey(kind, ip string) string    { return "regulator:" + kind + ":ip:" + ip }

// Reserve implements Regulator. The account's failure counter is incremented
// before the password is checked (an atomic increment in the store), so N
// parallel guesses get N distinct counts and only the first UserFailures are
// let through; Succeeded takes a successful attempt back.
func (r *CounterRegulator) Reserve(ctx context.Context, key, clientIP string) (bool, error) {
	if key != "" {
		n, err := r.Counters.GetCounter(ctx, userKey("lock", key))
		if err != nil || n > 0 {
			return false, err
		}
	}
	if clientIP != "" {
		n, err := r.Counters.GetCounter(ctx, ipKey("lock", clientIP))
		if err != nil || n > 0 {
			return false, err
		}
	}
	if key == "" {
		return true, nil
	}
	n, err := r.Counters.IncrCounter(ctx, userKey("fail", key), r.Window)
	if err != nil {
		return false, fmt.Errorf("reserving attempt: %w", err)
	}
	return n <= r.UserFailures, nil
}

// Failed implements Regulator: once the account has UserFailures failures within
// the window it is locked for UserLock, doubled for each lock in the last day (at
// most MaxUserLock); the IPFailures-th failure from one IP locks the IP for IPLock.
func (r *CounterRegulator) Failed(ctx context.Context, key, clientIP string) error {
	if key != "" {
		n, err := r.Counters.GetCounter(ctx, userKey("fail", key))
		if err != nil {
			return fmt.Errorf("counting failure: %w", err)
		}
		if n >= r.UserFailures {
			if err := r.lock(ctx, key); err != nil {
				return err
			}
		}
	}
	if clientIP != "" {
		n, err := r.Counters.IncrCounter(ctx, ipKey("fail", clientIP), r.Window)
		if err != nil {
			return fmt.Errorf("counting failure: %w", err)
		}
		if n >= r.IPFailures {
			if _, err := r.Counters.IncrCounter(ctx, ipKey("lock", clientIP), r.IPLock); err != nil {
				return fmt.Errorf("locking: %w", err)
			}
			r.report(Event{Kind: EventLockout, ClientIP: clientIP, Result: "ip"})
			return r.Counters.DeleteCounter(ctx, ipKey("fail", clientIP))
		}
	}
	return nil
}

func (r *CounterRegulator) lock(ctx context.Context, key string) error {
	if n, err := r.Counters.GetCounter(ctx, userKey("lock", key)); err != nil || n > 0 {
		return err // already locked by a parallel failure: one strike is enough
	}
	strikes, err := r.Counters.IncrCounter(ctx, userKey("strikes", key), 24*time.Hour)
	if err != nil {
		return fmt.Errorf("counting lock: %w", err)
	}
	lock := r.UserLock
	for i := int64(1); i < strikes && lock < r.MaxUserLock; i++ {
		lock *= 2
	}
	if lock > r.MaxUserLock {
		lock = r.MaxUserLock
	}
	if _, err := r.Counters.IncrCounter(ctx, userKey("lock", key), lock); err != nil {
		return fmt.Errorf("locking: %w", err)
	}
	r.report(Event{Kind: EventLockout, Result: "user", Duration: lock})
	return r.Counters.DeleteCounter(ctx, userKey("fail", key))
}

func (r *CounterRegulator) report(ev Event) {
	if r.Observer != nil {
		r.Observer.Observe(ev)
	}
}

// Succeeded implements Regulator: a successful login clears the account's
// failures, its own reservation included (not its lock history).
func (r *CounterRegulator) Succeeded(ctx context.Context, key string) error {
	return r.Counters.DeleteCounter(ctx, userKey("fail", key))
}

// Unlock lifts every lock and failure count of a user: by account, and by the
// normalised username and email counted before the account existed
// (caddy flowgate user unlock).
func (r *CounterRegulator) Unlock(ctx context.Context, u *User) error {
	keys := []string{RegulationKey(u, "")}
	for _, alias := range []string{u.Username, u.Email} {
		if alias != "" {
			keys = append(keys, RegulationKey(nil, alias))
		}
	}
	for _, key := range keys {
		for _, kind := range []string{"lock", "fail", "strikes"} {
			if err := r.Counters.DeleteCounter(ctx, userKey(kind, key)); err != nil {
				return err
			}
		}
	}
	return nil
}

// LockedUser reports whether brute-force regulation locks the user now, under
// any of the keys Unlock lifts: the account, or the normalised username or email
// (counted while no account answered to them, e.g. before it existed). It only
// reads counters.
func (r *CounterRegulator) LockedUser(ctx context.Context, u *User) (bool, error) {
	keys := []string{RegulationKey(u, "")}
	for _, alias := range []string{u.Username, u.Email} {
		if alias != "" {
			keys = append(keys, RegulationKey(nil, alias))
		}
	}
	for _, key := range keys {
		n, err := r.Counters.GetCounter(ctx, userKey("lock", key))
		if err != nil {
			return false, fmt.Errorf("reading lock: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ReputationSource gives the reputation scores of input.reputation.
type ReputationSource interface {
	// Reputation scores the account (a RegulationKey, "" for none) and the
	// client IP ("" for none).
	Reputation(ctx context.Context, key, clientIP string) (Reputation, error)
}

// Reputation is what policies see as input.reputation: 0 for a clean record,
// one lower for each failed login within the regulation window. A successful
// login raises the account's score back to 0 (its failures are cleared); a
// locked account or IP scores at least minus its failure limit, since a lock
// clears the failures that led to it. (authentik also rises above 0 with
// successes; flowgate's scores stop at 0, so thresholds below 0 behave the same.)
type Reputation struct {
	IP       int `json:"ip"`
	Username int `json:"username"`
}

// Reputation implements ReputationSource from the regulation counters. It
// only reads them.
func (r *CounterRegulator) Reputation(ctx context.Context, key, clientIP string) (Reputation, error) {
	var rep Reputation
	score := func(failKey, lockKey string, limit int64) (int, error) {
		fails, err := r.Counters.GetCounter(ctx, failKey)
		if err != nil {
			return 0, fmt.Errorf("reading reputation: %w", err)
		}
		locked, err := r.Counters.GetCounter(ctx, lockKey)
		if err != nil {
			return 0, fmt.Errorf("reading reputation: %w", err)
		}
		if locked > 0 && fails < limit {
			fails = limit
		}
		return -int(fails), nil
	}
	var err error
	if key != "" {
		if rep.Username, err = score(userKey("fail", key), userKey("lock", key), r.UserFailures); err != nil {
			return Reputation{}, err
		}
	}
	if clientIP != "" {
		if rep.IP, err = score(ipKey("fail", clientIP), ipKey("lock", clientIP), r.IPFailures); err != nil {
			return Reputation{}, err
		}
	}
	return rep, nil
}

var (
	_ Regulator        = (*CounterRegulator)(nil)
	_ ReputationSource = (*CounterRegulator)(nil)
)
