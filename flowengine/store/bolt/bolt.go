// Package bolt is the embedded default Store: one bbolt file that survives restarts.
package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/flowgate/flowgate/flowengine"
)

var (
	bucketUsers        = []byte("users")
	bucketUsersByName  = []byte("users_by_name")
	bucketUsersByEmail = []byte("users_by_email")
	bucketSessions     = []byte("sessions")
	bucketUserSessions = []byte("user_sessions")
	bucketExecutions   = []byte("executions")
	bucketCounters     = []byte("counters")
	bucketConfig       = []byte("config")
	allBuckets         = [][]byte{bucketUsers, bucketUsersByName, bucketUsersByEmail, bucketSessions, bucketUserSessions, bucketExecutions, bucketCounters, bucketConfig}
	keyConfig          = []byte("config")
)

// Store is a bbolt-backed flowengine.Store.
type Store struct {
	db    *bbolt.DB
	clock flowengine.Clock

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Options tune a bolt store.
type Options struct {
	// Clock defaults to the system clock.
	Clock flowengine.Clock
	// SweepInterval is how often expired records are deleted (default 1m; <0 disables).
	SweepInterval time.Duration
	// OpenTimeout bounds the wait for another process's file lock (default 5s).
	OpenTimeout time.Duration
}

// Open opens or creates the store file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = flowengine.SystemClock{}
	}
	if opts.OpenTimeout == 0 {
		opts.OpenTimeout = 5 * time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.OpenTimeout})
	if errors.Is(err, bberrors.ErrTimeout) {
		// The file lock is held elsewhere, typically by a second Caddy started
		// on the same data directory: say so, instead of bbolt's bare "timeout".
		return nil, fmt.Errorf("opening bolt store %s: the file is locked by another process (another Caddy "+
			"using the same storage file?); gave up after %s. A bolt file belongs to one process: stop the other one, "+
			"give each its own path (storage bolt <path>), or share a Redis store between gateways: %w",
			path, opts.OpenTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening bolt store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising bolt store %s: %w", path, err)
	}
	s := &Store{db: db, clock: opts.Clock, stop: make(chan struct{})}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = time.Minute
	}
	if interval > 0 {
		s.wg.Add(1)
		go s.sweepLoop(interval)
	}
	return s, nil
}

// Close stops the sweeper and closes the file.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	return s.db.Close()
}

func (s *Store) sweepLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Sweep()
		}
	}
}

// Sweep deletes expired sessions, executions and counters.
func (s *Store) Sweep() error {
	now := s.clock.Now()
	return s.db.Update(func(tx *bbolt.Tx) error {
		sessions := tx.Bucket(bucketSessions)
		var dead []*flowengine.Session
		_ = sessions.ForEach(func(k, v []byte) error {
			var sess flowengine.Session
			if json.Unmarshal(v, &sess) != nil || !now.Before(sess.ExpiresAt) {
				sess.ID = string(k)
				dead = append(dead, &sess)
			}
			return nil
		})
		for _, d := range dead {
			if err := deleteSession(tx, d.ID, d.UserID); err != nil {
				return err
			}
		}
		for _, name := range [][]byte{bucketExecutions, bucketCounters} {
			b := tx.Bucket(name)
			var keys [][]byte
			_ = b.ForEach(func(k, v []byte) error {
				if expired(v, now) {
					keys = append(keys, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Values in expiring buckets start with the expiry as 8 bytes of Unix nanoseconds.
func withExpiry(expires time.Time, data []byte) []byte {
	out := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(out, uint64(expires.UnixNano()))
	copy(out[8:], data)
	return out
}

func expired(v []byte, now time.Time) bool {
	if len(v) < 8 {
		return true
	}
	return !now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v))))
}

func wrapErr(op string, err error) error {
	if err == nil || errors.Is(err, flowengine.ErrNotFound) || errors.Is(err, flowengine.ErrConflict) ||
		errors.Is(err, flowengine.ErrChanged) {
		return err
	}
	return fmt.Errorf("bolt %s: %w", op, err)
}

var _ flowengine.Store = (*Store)(nil)
