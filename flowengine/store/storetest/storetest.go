// Package storetest is the conformance suite every flowengine.Store backend passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
)

// Factory returns a new, empty store that uses clock for expiry.
type Factory func(t *testing.T, clock *flowengine.ManualClock) flowengine.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock)
	}{
		{"Users", testUsers},
		{"UserUniqueness", testUserUniqueness},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"RevokeAll", testRevokeAll},
		{"DeleteUserRevokes", testDeleteUserRevokes},
		{"Executions", testExecutions},
		{"Config", testConfig},
		{"ConfigAtomic", testConfigAtomic},
		{"ConfigStale", testConfigStale},
		{"ConcurrentImports", testConcurrentImports},
		{"SeedKeepsLaterChanges", testSeedKeepsLaterChanges},
		{"SeedAuthoritativeFields", testSeedAuthoritativeFields},
		{"SeedDeactivationRevokes", testSeedDeactivationRevokes},
		{"DeactivateRevokes", testDeactivateRevokes},
		{"UpdateUserIf", testUpdateUserIf},
		{"UpdateUserIfStale", testUpdateUserIfStale},
		{"ConcurrentUpdateUserIf", testConcurrentUpdateUserIf},
		{"Counters", testCounters},
		{"SessionFlowAndCount", testSessionFlowAndCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := flowengine.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			s := newStore(t, clock)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s, clock)
		})
	}
}

func user(name, email string) *flowengine.User {
	return &flowengine.User{
		ID: flowengine.NewID(), Username: name, Email: email, Name: "N " + name, IsActive: true,
		Groups: []string{"staff"}, Attributes: map[string]any{"team": "docs"},
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUsers(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	alice := user("Alice", "Alice@Example.com")
	must(t, s.CreateUser(ctx, alice))
	for _, lookup := range []func() (*flowengine.User, error){
		func() (*flowengine.User, error) { return s.GetUser(ctx, alice.ID) },
		func() (*flowengine.User, error) { return s.GetUserByUsername(ctx, "alice") },
		func() (*flowengine.User, error) { return s.GetUserByUsername(ctx, "ALICE") },
		func() (*flowengine.User, error) { return s.GetUserByEmail(ctx, "alice@example.COM") },
	} {
		got, err := lookup()
		must(t, err)
		if got.ID != alice.ID || got.Username != "Alice" || got.Name != "N Alice" || !got.IsActive ||
			len(got.Groups) != 1 || got.Attributes["team"] != "docs" {
			t.Fatalf("lookup returned %+v", got)
		}
	}
	if _, err := s.GetUserByUsername(ctx, "bob"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("unknown username: %v, want ErrNotFound", err)
	}
	if _, err := s.GetUserByEmail(ctx, ""); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("empty email: %v, want ErrNotFound", err)
	}
	// Renaming frees the old name and email.
	alice.Username, alice.Email = "alice2", "a2@example.com"
	must(t, s.UpdateUser(ctx, alice))
	if _, err := s.GetUserByUsername(ctx, "alice"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("old username still resolves: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "alice@example.com"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("old email still resolves: %v", err)
	}
	must(t, s.CreateUser(ctx, user("alice", "alice@example.com")))
	must(t, s.CreateUser(ctx, user("bob", "")))
	list, err := s.ListUsers(ctx)
	must(t, err)
	if len(list) != 3 || list[0].Username != "alice" || list[1].Username != "alice2" || list[2].Username != "bob" {
		t.Fatalf("ListUsers order: %v", names(list))
	}
	if err := s.UpdateUser(ctx, user("ghost", "")); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("update of unknown user: %v", err)
	}
	must(t, s.DeleteUser(ctx, alice.ID))
	if _, err := s.GetUser(ctx, alice.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted user still there: %v", err)
	}
	if _, err := s.GetUserByUsername(ctx, "alice2"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted user's name still resolves: %v", err)
	}
}

func names(l []*flowengine.User) []string {
	var out []string
	for _, u := range l {
		out = append(out, u.Username)
	}
	return out
}

func testUserUniqueness(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, user("carol", "carol@example.com")))
	if err := s.CreateUser(ctx, user("CAROL", "other@example.com")); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("duplicate username (other case): %v, want ErrConflict", err)
	}
	if err := s.CreateUser(ctx, user("dave", "Carol@Example.com")); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("duplicate email (other case): %v, want ErrConflict", err)
	}
	dave := user("dave", "dave@example.com")
	must(t, s.CreateUser(ctx, dave))
	dave.Username = "Carol"
	if err := s.UpdateUser(ctx, dave); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("rename onto taken username: %v, want ErrConflict", err)
	}
	got, err := s.GetUserByUsername(ctx, "dave")
	must(t, err)
	if got.ID != dave.ID {
		t.Fatal("failed rename changed the user")
	}
}

func testConcurrentCreate(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.CreateUser(ctx, user("race", fmt.Sprintf("r%d@example.com", i)))
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, flowengine.ErrConflict) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent creates of one username succeeded, want 1", ok)
	}
}

func session(userID string, now time.Time, ttl time.Duration) *flowengine.Session {
	return &flowengine.Session{
		ID: flowengine.NewID(), UserID: userID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(ttl),
		ClientIP: "192.0.2.1", UserAgent: "test", AuthMethods: []string{"password"},
	}
}

// testSessionFlowAndCount: a session keeps the flow that created it (pinned
// sites depend on it), and a store that counts sessions counts them.
func testSessionFlowAndCount(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	a, b := session("u1", clock.Now(), time.Hour), session("u2", clock.Now(), time.Hour)
	a.Flow = "op-login"
	must(t, s.CreateSession(ctx, a))
	must(t, s.CreateSession(ctx, b))
	got, err := s.GetSession(ctx, a.ID)
	must(t, err)
	if got.Flow != "op-login" {
		t.Fatalf("session flow %q, want op-login", got.Flow)
	}
	counter, ok := s.(interface {
		CountSessions(context.Context) (int64, error)
	})
	if !ok {
		return
	}
	if n, err := counter.CountSessions(ctx); err != nil || n != 2 {
		t.Fatalf("CountSessions = %d, %v; want 2", n, err)
	}
	must(t, s.DeleteSession(ctx, b.ID))
	if n, err := counter.CountSessions(ctx); err != nil || n != 1 {
		t.Fatalf("CountSessions after a delete = %d, %v; want 1", n, err)
	}
}

func testSessions(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	now := clock.Now()
	a := session("u1", now, time.Hour)
	must(t, s.CreateSession(ctx, a))
	got, err := s.GetSession(ctx, a.ID)
	must(t, err)
	if got.UserID != "u1" || got.ClientIP != "192.0.2.1" || len(got.AuthMethods) != 1 || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("GetSession returned %+v", got)
	}
	if err := s.CreateSession(ctx, a); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("session id reuse: %v, want ErrConflict", err)
	}
	later := now.Add(30 * time.Minute)
	must(t, s.TouchSession(ctx, a.ID, later, later.Add(time.Hour)))
	clock.Advance(59 * time.Minute)
	got, err = s.GetSession(ctx, a.ID)
	must(t, err)
	if !got.LastSeen.Equal(later) {
		t.Fatalf("touch not kept: last seen %v", got.LastSeen)
	}
	must(t, s.DeleteSession(ctx, a.ID))
	if _, err := s.GetSession(ctx, a.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted session: %v, want ErrNotFound", err)
	}
	must(t, s.DeleteSession(ctx, a.ID)) // deleting twice is fine
	if _, err := s.GetSession(ctx, "nope"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}

func testSessionExpiry(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	a := session("u1", clock.Now(), time.Minute)
	must(t, s.CreateSession(ctx, a))
	clock.Advance(time.Minute)
	if _, err := s.GetSession(ctx, a.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("expired session: %v, want ErrNotFound", err)
	}
	if err := s.TouchSession(ctx, a.ID, clock.Now(), clock.Now().Add(time.Hour)); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("touching an expired session revived it: %v", err)
	}
	list, err := s.ListUserSessions(ctx, "u1")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("expired session listed")
	}
}

func testRevokeAll(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		sess := session("u1", clock.Now(), time.Hour)
		must(t, s.CreateSession(ctx, sess))
		ids = append(ids, sess.ID)
		clock.Advance(time.Second)
	}
	other := session("u2", clock.Now(), time.Hour)
	must(t, s.CreateSession(ctx, other))
	list, err := s.ListUserSessions(ctx, "u1")
	must(t, err)
	if len(list) != 3 || list[0].ID != ids[0] || list[2].ID != ids[2] {
		t.Fatalf("ListUserSessions: got %d sessions, want 3 oldest first", len(list))
	}
	must(t, s.DeleteUserSessions(ctx, "u1", ids[1]))
	for i, id := range ids {
		_, err := s.GetSession(ctx, id)
		if i == 1 && err != nil {
			t.Fatalf("kept session was revoked: %v", err)
		}
		if i != 1 && !errors.Is(err, flowengine.ErrNotFound) {
			t.Fatalf("session %d survived revoke-all: %v", i, err)
		}
	}
	if _, err := s.GetSession(ctx, other.ID); err != nil {
		t.Fatalf("another user's session was revoked: %v", err)
	}
}

func testDeleteUserRevokes(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	u := user("erin", "")
	must(t, s.CreateUser(ctx, u))
	sess := session(u.ID, clock.Now(), time.Hour)
	must(t, s.CreateSession(ctx, sess))
	must(t, s.DeleteUser(ctx, u.ID))
	if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a deleted user's session still works: %v", err)
	}
}

func testExecutions(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	must(t, s.PutExecution(ctx, "e1", []byte(`{"a":1}`), time.Minute))
	must(t, s.PutExecution(ctx, "e2", []byte(`{"b":2}`), time.Hour))
	got, err := s.GetExecution(ctx, "e1")
	must(t, err)
	if string(got) != `{"a":1}` {
		t.Fatalf("execution data %q", got)
	}
	must(t, s.PutExecution(ctx, "e1", []byte(`{"a":2}`), time.Minute))
	got, _ = s.GetExecution(ctx, "e1")
	if string(got) != `{"a":2}` {
		t.Fatalf("overwrite lost: %q", got)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.GetExecution(ctx, "e1"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("expired execution: %v, want ErrNotFound", err)
	}
	if got, err := s.GetExecution(ctx, "e2"); err != nil || string(got) != `{"b":2}` {
		t.Fatalf("other execution disturbed: %q %v", got, err)
	}
	must(t, s.DeleteExecution(ctx, "e2"))
	if _, err := s.GetExecution(ctx, "e2"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted execution: %v", err)
	}
}

func sampleConfig() *flowengine.Config {
	return &flowengine.Config{
		Policies: []flowengine.Policy{{Name: "p", Rego: "package p\nallow := true"}},
		Stages:   []flowengine.StageDef{{Name: "s", Type: "dummy", Config: map[string]any{"throw_error": false}}},
		Flows: []flowengine.Flow{{Slug: "f", Name: "F", Title: "T", Designation: flowengine.DesignationEnrollment,
			Stages: []flowengine.StageBinding{{Stage: "s", Order: 10, ReEvaluatePolicies: true,
				Policies: []flowengine.PolicyBinding{{Policy: "p", Enabled: true, Timeout: time.Second}}}}}},
	}
}

func testConfig(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	empty, rev, err := s.LoadConfig(ctx)
	must(t, err)
	if len(empty.Flows)+len(empty.Stages)+len(empty.Policies) != 0 || rev != "" {
		t.Fatalf("new store has config (revision %q)", rev)
	}
	seed := user("seed", "seed@example.com")
	seed.PasswordHash = "$2a$04$hash"
	must(t, s.ApplyConfig(ctx, "", sampleConfig(), created(seed)))
	cfg, rev, err := s.LoadConfig(ctx)
	must(t, err)
	if len(cfg.Flows) != 1 || cfg.Flows[0].Stages[0].Policies[0].Timeout != time.Second ||
		cfg.Stages[0].Config["throw_error"] != false || cfg.Policies[0].Rego == "" {
		t.Fatalf("config not kept: %+v", cfg)
	}
	u, err := s.GetUserByUsername(ctx, "seed")
	must(t, err)
	if u.PasswordHash != "$2a$04$hash" || u.Email != "seed@example.com" || u.ID == "" {
		t.Fatalf("seed user created as %+v", u)
	}
	// Applying again with the seed changed leaves the stored user alone.
	again := user("SEED", "new@example.com")
	must(t, s.ApplyConfig(ctx, rev, sampleConfig(), created(again)))
	u2, err := s.GetUserByUsername(ctx, "seed")
	must(t, err)
	if u2.ID != u.ID || u2.PasswordHash != "$2a$04$hash" || u2.Email != "seed@example.com" {
		t.Fatalf("seed re-applied: %+v", u2)
	}
	list, _ := s.ListUsers(ctx)
	if len(list) != 1 {
		t.Fatalf("seed applied twice created %d users", len(list))
	}
}

func testConfigAtomic(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, user("taken", "taken@example.com")))
	bad := created(user("fresh", "fresh@example.com"), user("other", "taken@example.com"))
	if err := s.ApplyConfig(ctx, "", sampleConfig(), bad); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("conflicting seed users: %v, want ErrConflict", err)
	}
	cfg, _, err := s.LoadConfig(ctx)
	must(t, err)
	if len(cfg.Flows) != 0 {
		t.Fatal("config applied although the users failed")
	}
	if _, err := s.GetUserByUsername(ctx, "fresh"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatal("half of a failed apply was kept")
	}
}

// testConfigStale: an apply merged onto a revision that another writer has
// since replaced is refused whole, seed users included.
func testConfigStale(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	must(t, s.ApplyConfig(ctx, "", sampleConfig(), nil))
	_, read, err := s.LoadConfig(ctx)
	must(t, err)
	// Another writer applies first.
	theirs := sampleConfig()
	theirs.Flows[0].Title = "theirs"
	must(t, s.ApplyConfig(ctx, read, theirs, nil))
	mine := sampleConfig()
	mine.Flows[0].Title = "mine"
	if err := s.ApplyConfig(ctx, read, mine, created(user("late", "late@example.com"))); !errors.Is(err, flowengine.ErrStale) {
		t.Fatalf("apply onto a replaced revision: %v, want ErrStale", err)
	}
	if err := s.ApplyConfig(ctx, "", mine, nil); !errors.Is(err, flowengine.ErrStale) {
		t.Fatalf("apply onto \"no config\" when one is stored: %v, want ErrStale", err)
	}
	cfg, now, err := s.LoadConfig(ctx)
	must(t, err)
	if cfg.Flows[0].Title != "theirs" || now == read || now == "" {
		t.Fatalf("after a stale apply: title %q, revision %q (read %q)", cfg.Flows[0].Title, now, read)
	}
	if _, err := s.GetUserByUsername(ctx, "late"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatal("a stale apply kept its seed user")
	}
	must(t, s.ApplyConfig(ctx, now, mine, nil))
	if cfg, _, _ := s.LoadConfig(ctx); cfg.Flows[0].Title != "mine" {
		t.Fatalf("apply at the current revision: title %q", cfg.Flows[0].Title)
	}
}

// testConcurrentImports: two engines on the store are two replicas; importing
// at the same moment, each merges onto the other's flows and none is lost.
func testConcurrentImports(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	noPolicies := func(m map[string]string) (flowengine.PolicyEvaluator, error) {
		if len(m) > 0 {
			return nil, errors.New("no policies in this test")
		}
		return nil, nil
	}
	const each = 10
	var wg sync.WaitGroup
	for _, replica := range []string{"a", "b"} {
		e, err := flowengine.New(flowengine.Options{Store: s, Stages: stages.Types(), Policies: noPolicies})
		must(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cfg := &flowengine.Config{
					Stages: []flowengine.StageDef{{Name: "login", Type: "user_login"}},
					Flows: []flowengine.Flow{{Slug: fmt.Sprintf("%s-%d", replica, i), Name: "F", Title: "F",
						Designation: flowengine.DesignationAuthentication,
						Stages:      []flowengine.StageBinding{{Stage: "login", Order: 1}}}},
				}
				if err := e.Apply(context.Background(), flowengine.Change{Config: cfg}); err != nil {
					t.Errorf("replica %s: %v", replica, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cfg, _, err := s.LoadConfig(context.Background())
	must(t, err)
	if len(cfg.Flows) != 2*each {
		t.Fatalf("%d flows stored after %d imports of one flow each: imports were lost", len(cfg.Flows), 2*each)
	}
}

// created makes seed users without state: created when missing, else left alone.
func created(users ...*flowengine.User) []flowengine.SeedUser {
	out := make([]flowengine.SeedUser, len(users))
	for i, u := range users {
		out[i] = flowengine.SeedUser{User: u}
	}
	return out
}

// present makes an authoritative seed user (state: present) naming fields.
func present(u *flowengine.User, fields ...string) []flowengine.SeedUser {
	return []flowengine.SeedUser{{User: u, Authoritative: true, Fields: fields}}
}

// applySeeds applies users with the stored configuration unchanged.
func applySeeds(t *testing.T, s flowengine.Store, users []flowengine.SeedUser) {
	t.Helper()
	ctx := context.Background()
	cfg, rev, err := s.LoadConfig(ctx)
	must(t, err)
	must(t, s.ApplyConfig(ctx, rev, cfg, users))
}

// testSeedKeepsLaterChanges: a seed user re-applied at every config load must
// not undo an operator's changes (a new password, a deactivation).
func testSeedKeepsLaterChanges(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	seed := func() *flowengine.User {
		u := user("demo", "demo@example.com")
		u.PasswordHash = "$2a$04$seed"
		return u
	}
	applySeeds(t, s, created(seed()))
	u, err := s.GetUserByUsername(ctx, "demo")
	must(t, err)
	u.PasswordHash, u.Email, u.Groups, u.IsActive = "$2a$04$changed", "changed@example.com", []string{"ops"}, false
	must(t, s.UpdateUser(ctx, u))
	applySeeds(t, s, created(seed()))
	got, err := s.GetUserByUsername(ctx, "demo")
	must(t, err)
	if got.ID != u.ID || got.PasswordHash != "$2a$04$changed" || got.Email != "changed@example.com" ||
		len(got.Groups) != 1 || got.Groups[0] != "ops" || got.IsActive {
		t.Fatalf("re-applied seed undid later changes: %+v", got)
	}
	if _, err := s.GetUserByEmail(ctx, "demo@example.com"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("seed email resolves again: %v", err)
	}
}

// testSeedAuthoritativeFields: state: present overwrites only the named fields.
func testSeedAuthoritativeFields(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	orig := user("demo", "demo@example.com")
	orig.PasswordHash = "$2a$04$seed"
	applySeeds(t, s, created(orig))
	u, err := s.GetUserByUsername(ctx, "demo")
	must(t, err)
	u.PasswordHash = "$2a$04$changed"
	must(t, s.UpdateUser(ctx, u))
	partial := &flowengine.User{Username: "DEMO", Email: "new@example.com", Name: "Other", PasswordHash: "$2a$04$other"}
	applySeeds(t, s, present(partial, "email"))
	got, err := s.GetUserByUsername(ctx, "demo")
	must(t, err)
	if got.Email != "new@example.com" {
		t.Fatalf("authoritative email not applied: %q", got.Email)
	}
	if got.ID != u.ID || got.Username != "demo" || got.PasswordHash != "$2a$04$changed" || got.Name != "N demo" ||
		!got.IsActive || len(got.Groups) != 1 || got.Groups[0] != "staff" || got.Attributes["team"] != "docs" ||
		!got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("authoritative seed naming only email changed more: %+v", got)
	}
	if byEmail, err := s.GetUserByEmail(ctx, "new@example.com"); err != nil || byEmail.ID != u.ID {
		t.Fatalf("new email does not resolve: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "demo@example.com"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("old email still resolves: %v", err)
	}
}

// cachedTTL is a session lifetime long enough that a caching store that judges
// expiry by the wall clock rather than the test clock still serves the session
// from its cache, so the tests below see stale cache entries.
const cachedTTL = 100 * 365 * 24 * time.Hour

// testSeedDeactivationRevokes: an authoritative seed that deactivates a user
// ends their sessions in the same step; other users keep theirs.
func testSeedDeactivationRevokes(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	demo, other := user("demo", "demo@example.com"), user("other", "other@example.com")
	must(t, s.CreateUser(ctx, demo))
	must(t, s.CreateUser(ctx, other))
	mine, theirs := session(demo.ID, clock.Now(), cachedTTL), session(other.ID, clock.Now(), cachedTTL)
	must(t, s.CreateSession(ctx, mine))
	must(t, s.CreateSession(ctx, theirs))
	_, err := s.GetSession(ctx, mine.ID) // a caching store now holds it
	must(t, err)
	// Re-applying an active seed without state changes nothing.
	applySeeds(t, s, created(user("demo", "demo@example.com")))
	if _, err := s.GetSession(ctx, mine.ID); err != nil {
		t.Fatalf("seed without state ended a session: %v", err)
	}
	applySeeds(t, s, present(&flowengine.User{Username: "demo", IsActive: false}, "is_active"))
	if u, err := s.GetUser(ctx, demo.ID); err != nil || u.IsActive {
		t.Fatalf("seed did not deactivate: %+v %v", u, err)
	}
	if _, err := s.GetSession(ctx, mine.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a user deactivated by a seed keeps a session: %v, want ErrNotFound", err)
	}
	if list, err := s.ListUserSessions(ctx, demo.ID); err != nil || len(list) != 0 {
		t.Fatalf("deactivated user's sessions listed: %d %v", len(list), err)
	}
	if _, err := s.GetSession(ctx, theirs.ID); err != nil {
		t.Fatalf("another user's session was ended: %v", err)
	}
}

// testDeactivateRevokes: UpdateUser deactivating a user ends their sessions;
// other updates and other users' sessions are left alone.
func testDeactivateRevokes(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	demo, other := user("demo", "demo@example.com"), user("other", "other@example.com")
	must(t, s.CreateUser(ctx, demo))
	must(t, s.CreateUser(ctx, other))
	mine, theirs := session(demo.ID, clock.Now(), cachedTTL), session(other.ID, clock.Now(), cachedTTL)
	must(t, s.CreateSession(ctx, mine))
	must(t, s.CreateSession(ctx, theirs))
	demo.Name = "Renamed"
	must(t, s.UpdateUser(ctx, demo))
	if _, err := s.GetSession(ctx, mine.ID); err != nil { // and a caching store holds it
		t.Fatalf("an update that keeps the user active ended a session: %v", err)
	}
	demo.IsActive = false
	must(t, s.UpdateUser(ctx, demo))
	if _, err := s.GetSession(ctx, mine.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a deactivated user keeps a session: %v, want ErrNotFound", err)
	}
	if list, err := s.ListUserSessions(ctx, demo.ID); err != nil || len(list) != 0 {
		t.Fatalf("deactivated user's sessions listed: %d %v", len(list), err)
	}
	if _, err := s.GetSession(ctx, theirs.ID); err != nil {
		t.Fatalf("another user's session was ended: %v", err)
	}
	// Reactivating does not bring sessions back; new ones work.
	demo.IsActive = true
	must(t, s.UpdateUser(ctx, demo))
	if _, err := s.GetSession(ctx, mine.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("reactivation revived a session: %v", err)
	}
	fresh := session(demo.ID, clock.Now(), time.Hour)
	must(t, s.CreateSession(ctx, fresh))
	if _, err := s.GetSession(ctx, fresh.ID); err != nil {
		t.Fatalf("new session after reactivation: %v", err)
	}
}

func testCounters(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		n, err := s.IncrCounter(ctx, "login:alice", 10*time.Minute)
		must(t, err)
		if n != want {
			t.Fatalf("IncrCounter = %d, want %d", n, want)
		}
	}
	clock.Advance(5 * time.Minute)
	n, _ := s.IncrCounter(ctx, "login:alice", 10*time.Minute)
	if n != 4 {
		t.Fatalf("counter within window = %d, want 4 (window must not slide)", n)
	}
	if n, _ := s.GetCounter(ctx, "login:alice"); n != 4 {
		t.Fatalf("GetCounter = %d", n)
	}
	clock.Advance(5 * time.Minute)
	if n, _ := s.GetCounter(ctx, "login:alice"); n != 0 {
		t.Fatalf("expired counter = %d, want 0", n)
	}
	if n, _ := s.IncrCounter(ctx, "login:alice", time.Minute); n != 1 {
		t.Fatalf("counter after expiry restarts at %d, want 1", n)
	}
	must(t, s.DeleteCounter(ctx, "login:alice"))
	if n, _ := s.GetCounter(ctx, "login:alice"); n != 0 {
		t.Fatalf("deleted counter = %d", n)
	}
}

// BenchmarkSessionLookup measures GetSession of a typical session on s, the
// store read every proxied request makes.
func BenchmarkSessionLookup(b *testing.B, s flowengine.Store) {
	ctx := context.Background()
	now := time.Now()
	sess := &flowengine.Session{ID: flowengine.NewID(), UserID: flowengine.NewID(), CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(time.Hour), ClientIP: "192.0.2.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", AuthMethods: []string{"password"}}
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.GetSession(ctx, sess.ID); err != nil {
			b.Fatal(err)
		}
	}
}
