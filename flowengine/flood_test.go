package flowengine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
)

// Tests of a login flood: wrong passwords for many names at once, each from its
// own client IP, so that regulation rightly lets them through. Hashing is
// bounded; what does not fit is answered busy at once and counts for nothing.

// countingRegulator is a CounterRegulator that counts the attempts it reserved.
type countingRegulator struct {
	*flowengine.CounterRegulator
	reserved atomic.Int64
}

func (r *countingRegulator) Reserve(ctx context.Context, key, clientIP string) (bool, error) {
	r.reserved.Add(1)
	return r.CounterRegulator.Reserve(ctx, key, clientIP)
}

// attempts records the login attempts the engine reports.
type attempts struct {
	mu     sync.Mutex
	events []flowengine.Event
}

func (a *attempts) Observe(ev flowengine.Event) {
	if ev.Kind != flowengine.EventLoginAttempt {
		return
	}
	a.mu.Lock()
	a.events = append(a.events, ev)
	a.mu.Unlock()
}

func (a *attempts) results(result string) []flowengine.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []flowengine.Event
	for _, ev := range a.events {
		if ev.Result == result {
			out = append(out, ev)
		}
	}
	return out
}

// floodEnv is the example flows with regulation and the given hashing limit.
func floodEnv(t *testing.T, kind storeKind, hashes *flowengine.HashLimiter) (*env, *countingRegulator, *attempts) {
	t.Helper()
	clock := flowengine.NewManualClock(t0)
	st := newStore(t, kind, clock)
	reg := &countingRegulator{CounterRegulator: flowengine.NewRegulator(st)}
	seen := &attempts{}
	e, err := flowengine.New(flowengine.Options{Store: st, Stages: stages.Types(), Policies: compileRego, Clock: clock,
		Services: flowengine.Services{Regulator: reg, Hashes: hashes}, Observer: seen})
	if err != nil {
		t.Fatal(err)
	}
	if err := applyYAML(e, exampleBlueprint(t)); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, engine: e, store: st, clock: clock}, reg, seen
}

// busyAnswer sends a password and expects the busy refusal; it returns its text.
func busyAnswer(t *testing.T, e *env, res *flowengine.Result, password string) string {
	t.Helper()
	out, err := e.engine.Answer(context.Background(), res.ExecutionID, req(""), map[string]any{"password": password})
	if !errors.Is(err, flowengine.ErrOverloaded) || out != nil {
		t.Fatalf("answer while hashing is full: %v, %+v; want ErrOverloaded", err, out)
	}
	return err.Error()
}

// With every hashing slot and the whole queue taken, password answers are
// refused at once, alike for a known and an unknown name, count against no
// one (more of them than the lock threshold leave the account open) and leave
// the execution where it was.
func TestBusyAttemptsCountForNothing(t *testing.T) {
	for _, kind := range []storeKind{memoryStore, boltStore} {
		t.Run(string(kind), func(t *testing.T) {
			hashes := flowengine.NewHashLimiter(1, 1, time.Minute)
			e, reg, seen := floodEnv(t, kind, hashes)
			vic := e.addUser("vic", "right")
			const n = 2 * flowengine.DefaultUserFailures
			var known, unknown []*flowengine.Result
			for range n {
				known = append(known, identified(e, "vic"))
				unknown = append(unknown, identified(e, "ghost"))
			}

			free := hold(t, hashes)
			queued := make(chan error, 1)
			go func() {
				release, err := hashes.Acquire(context.Background())
				if err == nil {
					release()
				}
				queued <- err
			}()
			waitFor(t, "the queue to fill", func() bool { return hashes.Queued() == 1 })

			start := time.Now()
			want := busyAnswer(t, e, known[0], "wrong")
			for i := range n {
				for _, got := range []string{busyAnswer(t, e, known[i], "wrong"), busyAnswer(t, e, unknown[i], "wrong")} {
					if got != want {
						t.Fatalf("busy answers differ: %q and %q", got, want)
					}
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%d busy answers took %s: a full queue must answer at once", 2*n+1, d)
			}
			if r := reg.reserved.Load(); r != 0 {
				t.Fatalf("busy attempts reserved %d regulation counts", r)
			}
			busy := seen.results("busy")
			if len(busy) != 2*n+1 || len(seen.results("failure")) != 0 {
				t.Fatalf("observer heard %d busy attempts (want %d) and %d failures", len(busy), 2*n+1, len(seen.results("failure")))
			}
			for _, ev := range busy {
				if (ev.Username == "vic") != (ev.UserID == vic.ID) || (ev.Username != "vic" && ev.Username != "ghost") {
					t.Fatalf("busy event: %+v", ev)
				}
			}

			free()
			if err := <-queued; err != nil {
				t.Fatal(err)
			}
			// The executions are still at the password stage, with no failure
			// counted, and neither name is locked.
			res := e.answer(unknown[0], req(""), "password", "wrong")
			if got := res.Response.Errors["password"]; len(got) != 1 || strings.Contains(strings.Join(res.Response.Messages, " "), lockMessage) {
				t.Fatalf("unknown name after %d busy attempts: %+v", n, res.Response)
			}
			res = e.answer(known[0], req(""), "password", "right")
			if res.NewSession == nil {
				t.Fatalf("right password after %d busy attempts: %+v", n+1, res.Response)
			}
			if r := reg.reserved.Load(); r != 2 {
				t.Fatalf("%d attempts reserved, want the 2 heard", r)
			}
		})
	}
}

// Many password answers at once for a known name (with a hash of the default
// cost) and unknown ones, one hashing slot and one place in the queue: the
// ones that fit are checked, the others answered busy, the same way for both;
// only the checked ones reach the regulator.
func TestFloodOfAnswers(t *testing.T) {
	hashes := flowengine.NewHashLimiter(1, 1, time.Minute)
	e, reg, _ := floodEnv(t, memoryStore, hashes)
	h, err := flowengine.HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	kim := &flowengine.User{ID: flowengine.NewID(), Username: "kim", IsActive: true, PasswordHash: h}
	if err := e.store.CreateUser(context.Background(), kim); err != nil {
		t.Fatal(err)
	}
	const perName = 12
	type attempt struct {
		known bool
		exec  *flowengine.Result
		res   *flowengine.Result
		err   error
		took  time.Duration
	}
	var all []*attempt
	for i := range perName {
		all = append(all, &attempt{known: true, exec: identified(e, "kim")})
		all = append(all, &attempt{exec: identified(e, "nobody-"+string(rune('a'+i)))})
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req("")
			r.ClientIP = "198.51.100." + string(rune('1'+i%9)) // many clients
			<-gate
			start := time.Now()
			a.res, a.err = e.engine.Answer(context.Background(), a.exec.ExecutionID, r, map[string]any{"password": "wrong"})
			a.took = time.Since(start)
		}()
	}
	close(gate)
	wg.Wait()

	checked, kimChecked := 0, 0
	busyText := map[bool]map[string]bool{true: {}, false: {}}
	for i, a := range all {
		switch {
		case errors.Is(a.err, flowengine.ErrOverloaded):
			busyText[a.known][a.err.Error()] = true
		case a.err != nil:
			t.Fatalf("answer %d: %v", i, a.err)
		default:
			wantChallenge(t, a.res, "password")
			if len(a.res.Response.Errors["password"]) != 1 {
				t.Fatalf("answer %d: %+v", i, a.res.Response)
			}
			checked++
			if a.known {
				kimChecked++
			}
		}
	}
	busy := len(all) - checked
	t.Logf("%d answers: %d checked, %d busy", len(all), checked, busy)
	if busy == 0 || checked == 0 {
		t.Fatalf("%d checked, %d busy: want some of each", checked, busy)
	}
	if len(busyText[true]) != 1 || len(busyText[false]) != 1 || !equalKeys(busyText[true], busyText[false]) {
		t.Fatalf("busy answers for known %v and unknown %v names differ", busyText[true], busyText[false])
	}
	if r := reg.reserved.Load(); r != int64(checked) {
		t.Fatalf("%d attempts reserved with the regulator, %d checked: busy ones must count for nothing", r, checked)
	}
	for i, a := range all {
		if a.err != nil && a.took > 30*time.Second {
			t.Fatalf("busy answer %d took %s: a full queue must answer at once", i, a.took)
		}
	}
	// Fewer wrong passwords were heard than lock the account, however many
	// were sent: the right one still gets in.
	if kimChecked < flowengine.DefaultUserFailures {
		res := e.answer(identified(e, "kim"), req(""), "password", "right")
		if res.NewSession == nil {
			t.Fatalf("kim after %d busy and %d wrong attempts: %+v", perName-kimChecked, kimChecked, res.Response)
		}
	}
}

func equalKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
