package flowengine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Password hashing limits by default.
const (
	// DefaultHashQueueFactor times the concurrency is how many attempts may wait.
	DefaultHashQueueFactor = 4
	// DefaultHashMaxWait is the longest an attempt waits for a hashing slot.
	DefaultHashMaxWait = 2 * time.Second
)

// HashLimiter bounds password hashing: at most Limit hashes run at once, at
// most QueueLimit attempts wait for one, none longer than MaxWait. Each argon2id
// hash at the default cost takes 46 MiB and a core for tens of milliseconds, so
// without a bound a flood of wrong passwords (each from its own IP, which
// regulation rightly lets through) takes the memory and every core of the
// gateway, and signed-in users' requests with it. An attempt refused here was
// never heard: the caller answers "busy" and counts nothing.
//
// A nil *HashLimiter is unlimited. Safe for concurrent use.
type HashLimiter struct {
	slots    chan struct{} // one token per running hash
	queue    int64
	maxWait  time.Duration
	waiting  atomic.Int64
	inFlight atomic.Int64
}

// DefaultHashConcurrency is one less than the cores Go uses (at least one): a
// flood of sign-ins then keeps a core free for signed-in users' requests.
func DefaultHashConcurrency() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// NewHashLimiter returns a limiter running at most concurrency hashes at once
// (0: DefaultHashConcurrency), with at most queue attempts waiting (0: 4 × concurrency;
// negative: none wait), each for at most maxWait (0: DefaultHashMaxWait).
func NewHashLimiter(concurrency, queue int, maxWait time.Duration) *HashLimiter {
	if concurrency <= 0 {
		concurrency = DefaultHashConcurrency()
	}
	switch {
	case queue == 0:
		queue = DefaultHashQueueFactor * concurrency
	case queue < 0:
		queue = 0
	}
	if maxWait <= 0 {
		maxWait = DefaultHashMaxWait
	}
	return &HashLimiter{slots: make(chan struct{}, concurrency), queue: int64(queue), maxWait: maxWait}
}

// Acquire takes a hashing slot, waiting in the queue if every slot is taken.
// It fails with ErrOverloaded at once when the queue is full, after MaxWait, or
// when ctx ends first (then the error also matches ctx.Err()). On success the
// caller must call release once the hashing is done; calling it again does
// nothing.
func (l *HashLimiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return l.taken(), nil
	default:
	}
	if l.waiting.Add(1) > l.queue {
		l.waiting.Add(-1)
		return nil, fmt.Errorf("%w: %d hashing, %d waiting", ErrOverloaded, cap(l.slots), l.queue)
	}
	defer l.waiting.Add(-1)
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	// A freed slot goes to the longest waiter: a channel hands a receive's room
	// to the first blocked sender, so a newcomer cannot overtake the queue.
	select {
	case l.slots <- struct{}{}:
		return l.taken(), nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: no hashing slot within %s", ErrOverloaded, l.maxWait)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrOverloaded, ctx.Err())
	}
}

func (l *HashLimiter) taken() func() {
	l.inFlight.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.inFlight.Add(-1)
			<-l.slots
		})
	}
}

// Limit is how many hashes may run at once (0 for a nil, unlimited limiter).
func (l *HashLimiter) Limit() int {
	if l == nil {
		return 0
	}
	return cap(l.slots)
}

// QueueLimit is how many attempts may wait for a slot.
func (l *HashLimiter) QueueLimit() int {
	if l == nil {
		return 0
	}
	return int(l.queue)
}

// MaxWait is the longest an attempt waits for a slot.
func (l *HashLimiter) MaxWait() time.Duration {
	if l == nil {
		return 0
	}
	return l.maxWait
}

// Queued is how many attempts are waiting for a slot now (for a gauge).
func (l *HashLimiter) Queued() int {
	if l == nil {
		return 0
	}
	return int(l.waiting.Load())
}

// InFlight is how many hashes are running now (for a gauge).
func (l *HashLimiter) InFlight() int {
	if l == nil {
		return 0
	}
	return int(l.inFlight.Load())
}
