package flowengine

import (
	"context"
	"fmt"
	"time"
)

// Brute-force regulation defaults.
const (
	DefaultUserFailures = 5                // failures for one username…
	DefaultIPFailures   = 50               // …or from one client IP…
	DefaultFailWindow   = 10 * time.Minute // …within this window lock it
	DefaultUserLock     = 5 * time.Minute  // first lock of a username; doubles on repeat
	DefaultMaxUserLock  = time.Hour
	DefaultIPLock       = 10 * time.Minute
)

// CounterRegulator is the Regulator on a CounterStore: with a shared store
// (Redis) every replica counts the same attempts, so spreading them gains an
// attacker nothing. Usernames are counted whether or not they exist.
type CounterRegulator struct {
	Counters     CounterStore
	UserFailures int64
	IPFailures   int64
	Window       time.Duration
	UserLock     time.Duration
	MaxUserLock  time.Duration
	IPLock       time.Duration
}

// NewRegulator returns a regulator with the default limits.
func NewRegulator(c CounterStore) *CounterRegulator {
	return &CounterRegulator{Counters: c, UserFailures: DefaultUserFailures, IPFailures: DefaultIPFailures,
		Window: DefaultFailWindow, UserLock: DefaultUserLock, MaxUserLock: DefaultMaxUserLock, IPLock: DefaultIPLock}
}

func userKey(kind, username string) string {
	return "regulator:" + kind + ":u:" + NormalizeKey(username)
}
func ipKey(kind, ip string) string { return "regulator:" + kind + ":ip:" + ip }

// Locked implements Regulator.
func (r *CounterRegulator) Locked(ctx context.Context, username, clientIP string) (bool, error) {
	if username != "" {
		n, err := r.Counters.GetCounter(ctx, userKey("lock", username))
		if err != nil || n > 0 {
			return n > 0, err
		}
	}
	if clientIP != "" {
		n, err := r.Counters.GetCounter(ctx, ipKey("lock", clientIP))
		return n > 0, err
	}
	return false, nil
}

// Failed implements Regulator: the UserFailures-th failure within the window
// locks the username for UserLock, doubled for each lock in the last day (at most
// MaxUserLock); the IPFailures-th locks the client IP for IPLock.
func (r *CounterRegulator) Failed(ctx context.Context, username, clientIP string) error {
	if username != "" {
		n, err := r.Counters.IncrCounter(ctx, userKey("fail", username), r.Window)
		if err != nil {
			return fmt.Errorf("counting failure: %w", err)
		}
		if n >= r.UserFailures {
			strikes, err := r.Counters.IncrCounter(ctx, userKey("strikes", username), 24*time.Hour)
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
			if _, err := r.Counters.IncrCounter(ctx, userKey("lock", username), lock); err != nil {
				return fmt.Errorf("locking: %w", err)
			}
			if err := r.Counters.DeleteCounter(ctx, userKey("fail", username)); err != nil {
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
			return r.Counters.DeleteCounter(ctx, ipKey("fail", clientIP))
		}
	}
	return nil
}

// Succeeded implements Regulator: a successful login clears the username's
// failures (not its lock history).
func (r *CounterRegulator) Succeeded(ctx context.Context, username string) error {
	return r.Counters.DeleteCounter(ctx, userKey("fail", username))
}

// Unlock lifts a username's lock and failures (caddy flowgate user unlock).
func (r *CounterRegulator) Unlock(ctx context.Context, username string) error {
	for _, kind := range []string{"lock", "fail", "strikes"} {
		if err := r.Counters.DeleteCounter(ctx, userKey(kind, username)); err != nil {
			return err
		}
	}
	return nil
}

var _ Regulator = (*CounterRegulator)(nil)
