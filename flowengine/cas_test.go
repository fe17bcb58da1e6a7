package flowengine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/cache"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

// racingStore lands an operator's write between a stage's read of a user and
// its write: once armed, the next read by that username runs the hook after
// the store answered and before the stage sees the answer.
type racingStore struct {
	flowengine.Store
	mu    sync.Mutex
	name  string
	hook  func()
	fired bool
}

func (s *racingStore) arm(username string, hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.name, s.hook, s.fired = flowengine.NormalizeKey(username), hook, false
}

func (s *racingStore) GetUserByUsername(ctx context.Context, name string) (*flowengine.User, error) {
	u, err := s.Store.GetUserByUsername(ctx, name)
	s.mu.Lock()
	hook := s.hook
	if hook == nil || flowengine.NormalizeKey(name) != s.name {
		hook = nil
	} else {
		s.hook, s.fired = nil, true
	}
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return u, err
}

func (s *racingStore) didFire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired
}

// The two best-effort writes of a sign-in — the hash upgrade (password stage)
// and LastLogin (user_login) — read the user, change a copy and write it back.
// An operator's deactivation or new password landing between that read and
// that write must stay: not a reactivated account, not the old password back.
func TestLoginWritesKeepOperatorChanges(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T, clock *flowengine.ManualClock) flowengine.Store
	}{
		{"memory", func(t *testing.T, c *flowengine.ManualClock) flowengine.Store { return newStore(t, memoryStore, c) }},
		{"bolt", func(t *testing.T, c *flowengine.ManualClock) flowengine.Store { return newStore(t, boltStore, c) }},
		{"cached", func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
			return cache.New(memory.New(c), time.Hour, 1000)
		}},
	}
	writes := []struct {
		name       string
		keepHashes bool // true: no hash upgrade, so the raced read is recordLogin's
	}{
		{"hash upgrade", false},
		{"last login", true},
	}
	newHash := lowCostHash("operator's new")
	operators := []struct {
		name   string
		change func(u *flowengine.User) // nil: no operator write
	}{
		{"no operator write", nil},
		{"deactivation", func(u *flowengine.User) { u.IsActive = false }},
		{"new password", func(u *flowengine.User) { u.PasswordHash = newHash }},
	}
	for _, st := range stores {
		for _, w := range writes {
			for _, op := range operators {
				t.Run(st.name+"/"+w.name+"/"+op.name, func(t *testing.T) {
					ctx := context.Background()
					clock := flowengine.NewManualClock(t0)
					base := st.open(t, clock)
					e, racing := racingEnv(t, base, clock, w.keepHashes)
					jo := e.addUser("jo", "pw")
					r := req("")
					res := e.answer(e.start("default-authentication", r), r, "uid_field", "jo")
					wantChallenge(t, res, "password")
					if op.change != nil {
						racing.arm("jo", func() {
							u, err := base.GetUserByUsername(ctx, "jo")
							if err != nil {
								t.Errorf("operator's read: %v", err)
								return
							}
							op.change(u)
							if err := base.UpdateUser(ctx, u); err != nil {
								t.Errorf("operator's write: %v", err)
							}
						})
					}
					e.answer(res, r, "password", "pw")
					if op.change != nil && !racing.didFire() {
						t.Fatal("the login made no read by username for the operator's write to follow")
					}
					got, err := base.GetUser(ctx, jo.ID)
					if err != nil {
						t.Fatal(err)
					}
					verifies := func(pw string) bool { ok, _ := flowengine.VerifyPassword(got.PasswordHash, pw); return ok }
					switch op.name {
					case "no operator write": // both writes land
						if !w.keepHashes && flowengine.NeedsRehash(got.PasswordHash) {
							t.Fatalf("hash not upgraded: %q", got.PasswordHash)
						}
						if !verifies("pw") || !got.LastLogin.Equal(t0) {
							t.Fatalf("after a quiet login: verifies %v, last login %v", verifies("pw"), got.LastLogin)
						}
					case "deactivation":
						if got.IsActive {
							t.Fatal("the login's write reactivated a user deactivated meanwhile")
						}
						if got.PasswordHash != jo.PasswordHash || !got.LastLogin.IsZero() {
							t.Fatalf("the login wrote over a deactivated user: %+v", got)
						}
						if list, err := base.ListUserSessions(ctx, jo.ID); err != nil || len(list) != 0 {
							t.Fatalf("a user deactivated meanwhile is signed in: %d sessions, %v", len(list), err)
						}
					case "new password":
						if got.PasswordHash != newHash || verifies("pw") || !verifies("operator's new") {
							t.Fatalf("the login's write put the old password back: %q", got.PasswordHash)
						}
						if w.keepHashes && !got.LastLogin.IsZero() {
							t.Fatalf("LastLogin written over the operator's change: %v", got.LastLogin)
						}
					}
				})
			}
		}
	}
}

// racingEnv is newEnv's engine on base behind a racingStore.
func racingEnv(t *testing.T, base flowengine.Store, clock *flowengine.ManualClock, keepHashes bool) (*env, *racingStore) {
	t.Helper()
	racing := &racingStore{Store: base}
	eng, err := flowengine.New(flowengine.Options{Store: racing, Stages: stages.Types(), Policies: compileRego, Clock: clock,
		Services: flowengine.Services{KeepHashes: keepHashes}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := applyYAML(eng, exampleBlueprint(t)); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, engine: eng, store: racing, clock: clock}, racing
}
