package flowengine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestHashLimiterDefaults(t *testing.T) {
	tests := []struct {
		name               string
		concurrency, queue int
		maxWait            time.Duration
		wantLimit, wantQ   int
		wantWait           time.Duration
	}{
		{name: "all defaults", wantLimit: max(1, runtime.GOMAXPROCS(0)-1), wantQ: 4 * max(1, runtime.GOMAXPROCS(0)-1), wantWait: 2 * time.Second},
		{name: "queue follows concurrency", concurrency: 3, wantLimit: 3, wantQ: 12, wantWait: 2 * time.Second},
		{name: "all set", concurrency: 2, queue: 5, maxWait: time.Second, wantLimit: 2, wantQ: 5, wantWait: time.Second},
		{name: "negative queue: nobody waits", concurrency: 1, queue: -1, wantLimit: 1, wantQ: 0, wantWait: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := flowengine.NewHashLimiter(tc.concurrency, tc.queue, tc.maxWait)
			if l.Limit() != tc.wantLimit || l.QueueLimit() != tc.wantQ || l.MaxWait() != tc.wantWait {
				t.Fatalf("limit %d queue %d wait %s; want %d %d %s", l.Limit(), l.QueueLimit(), l.MaxWait(),
					tc.wantLimit, tc.wantQ, tc.wantWait)
			}
		})
	}
}

// Many goroutines at once never run more than the limit, and with room in the
// queue every one of them gets its turn.
func TestHashLimiterRespectsLimit(t *testing.T) {
	const limit, n = 3, 64
	l := flowengine.NewHashLimiter(limit, n, 10*time.Second)
	var running, peak, peakSeen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.Acquire(context.Background())
			if err != nil {
				errs <- err
				return
			}
			now := running.Add(1)
			for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
			}
			if f := int64(l.InFlight()); f > peakSeen.Load() {
				peakSeen.Store(f)
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			release()
			release() // a second call does nothing
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("acquire: %v", err)
	}
	if peak.Load() > limit || peakSeen.Load() > limit {
		t.Fatalf("%d ran at once (InFlight said %d), limit %d", peak.Load(), peakSeen.Load(), limit)
	}
	if peak.Load() < 2 {
		t.Fatalf("never more than %d at once: the limiter serialised everything", peak.Load())
	}
	if l.InFlight() != 0 || l.Queued() != 0 {
		t.Fatalf("after all: %d in flight, %d queued", l.InFlight(), l.Queued())
	}
}

// hold takes every slot of l and returns a func giving them back.
func hold(t *testing.T, l *flowengine.HashLimiter) func() {
	t.Helper()
	var releases []func()
	for range l.Limit() {
		r, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}
}

func TestHashLimiterQueueFullAnswersAtOnce(t *testing.T) {
	l := flowengine.NewHashLimiter(1, 1, time.Minute)
	free := hold(t, l)
	waiter := make(chan error, 1)
	go func() {
		release, err := l.Acquire(context.Background())
		if err == nil {
			release()
		}
		waiter <- err
	}()
	waitFor(t, "the waiter to queue", func() bool { return l.Queued() == 1 })
	start := time.Now()
	_, err := l.Acquire(context.Background())
	if !errors.Is(err, flowengine.ErrOverloaded) {
		t.Fatalf("queue full: got %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %s; a full queue must answer at once", d)
	}
	if l.Queued() != 1 || l.InFlight() != 1 {
		t.Fatalf("a refusal changed the counts: %d queued, %d in flight", l.Queued(), l.InFlight())
	}
	free()
	if err := <-waiter; err != nil {
		t.Fatalf("the queued attempt, once a slot was free: %v", err)
	}
}

func TestHashLimiterMaxWait(t *testing.T) {
	const wait = 50 * time.Millisecond
	l := flowengine.NewHashLimiter(1, 4, wait)
	defer hold(t, l)()
	start := time.Now()
	_, err := l.Acquire(context.Background())
	if !errors.Is(err, flowengine.ErrOverloaded) {
		t.Fatalf("got %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("gave up after %s, before the maximum wait of %s", d, wait)
	}
	if l.Queued() != 0 {
		t.Fatalf("%d still queued after giving up", l.Queued())
	}
}

func TestHashLimiterContextCancel(t *testing.T) {
	l := flowengine.NewHashLimiter(1, 4, time.Minute)
	defer hold(t, l)()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx)
		done <- err
	}()
	waitFor(t, "the attempt to queue", func() bool { return l.Queued() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, flowengine.ErrOverloaded) {
			t.Fatalf("got %v, want context.Canceled and ErrOverloaded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled wait did not end")
	}
	if l.Queued() != 0 {
		t.Fatalf("%d still queued after the cancel", l.Queued())
	}
}

func TestHashLimiterNilIsUnlimited(t *testing.T) {
	var l *flowengine.HashLimiter
	for range 100 {
		if _, err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if l.Limit() != 0 || l.Queued() != 0 || l.InFlight() != 0 {
		t.Fatal("a nil limiter reports counts")
	}
}

func ExampleHashLimiter() {
	hashes := flowengine.NewHashLimiter(1, -1, time.Second) // one hash at a time, nobody waits
	release, err := hashes.Acquire(context.Background())
	if err != nil {
		return
	}
	fmt.Println("in flight:", hashes.InFlight())
	_, err = hashes.Acquire(context.Background())
	fmt.Println(errors.Is(err, flowengine.ErrOverloaded))
	release()
	fmt.Println("in flight:", hashes.InFlight(), "queued:", hashes.Queued())
	// Output:
	// in flight: 1
	// true
	// in flight: 0 queued: 0
}
