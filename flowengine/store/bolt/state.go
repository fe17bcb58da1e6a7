package bolt

import (
	"context"
	"encoding/binary"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/flowgate/flowgate/flowengine"
)

// PutExecution implements flowengine.ExecutionStore.
func (s *Store) PutExecution(_ context.Context, id string, data []byte, ttl time.Duration) error {
	v := withExpiry(s.clock.Now().Add(ttl), data)
	return wrapErr("put execution", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketExecutions).Put([]byte(id), v)
	}))
}

// GetExecution implements flowengine.ExecutionStore.
func (s *Store) GetExecution(_ context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketExecutions).Get([]byte(id))
		if v == nil || expired(v, s.clock.Now()) {
			return flowengine.ErrNotFound
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	return out, wrapErr("get execution", err)
}

// DeleteExecution implements flowengine.ExecutionStore.
func (s *Store) DeleteExecution(_ context.Context, id string) error {
	return wrapErr("delete execution", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketExecutions).Delete([]byte(id))
	}))
}

// IncrCounter implements flowengine.CounterStore.
func (s *Store) IncrCounter(_ context.Context, key string, window time.Duration) (int64, error) {
	var n int64
	now := s.clock.Now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		v := b.Get([]byte(key))
		expires := now.Add(window)
		if v != nil && len(v) == 16 && !expired(v, now) {
			n = int64(binary.BigEndian.Uint64(v[8:]))
			expires = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
		n++
		buf := make([]byte, 8)
		binary.BigEndian.PutUint64(buf, uint64(n))
		return b.Put([]byte(key), withExpiry(expires, buf))
	})
	return n, wrapErr("incr counter", err)
}

// GetCounter implements flowengine.CounterStore.
func (s *Store) GetCounter(_ context.Context, key string) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketCounters).Get([]byte(key))
		if v != nil && len(v) == 16 && !expired(v, s.clock.Now()) {
			n = int64(binary.BigEndian.Uint64(v[8:]))
		}
		return nil
	})
	return n, wrapErr("get counter", err)
}

// DeleteCounter implements flowengine.CounterStore.
func (s *Store) DeleteCounter(_ context.Context, key string) error {
	return wrapErr("delete counter", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCounters).Delete([]byte(key))
	}))
}
