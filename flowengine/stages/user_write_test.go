package stages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

var writeT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestUserWriteConfig(t *testing.T) {
	checkConfigs(t, "user_write", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"user_creation_mode": "always_create", "create_users_as_inactive": true,
			"create_users_group": "users", "user_path_template": "users/%(year)s"}, ""},
		{"never create", map[string]any{"user_creation_mode": "never_create"}, ""},
		{"bad mode", map[string]any{"user_creation_mode": "sometimes"}, "user_creation_mode"},
		{"unknown key", map[string]any{"is_active": true}, `unknown config key "is_active"`},
	})
}

// stageEnv is a memory store with one existing user, alice, and two sessions of hers.
type stageEnv struct {
	store    *memory.Store
	clock    *flowengine.ManualClock
	alice    *flowengine.User
	current  *flowengine.Session
	otherSes *flowengine.Session
}

func newStageEnv(t testing.TB) *stageEnv {
	t.Helper()
	ctx := context.Background()
	clock := flowengine.NewManualClock(writeT0)
	st := memory.New(clock)
	alice := &flowengine.User{ID: flowengine.NewID(), Username: "alice", Email: "alice@example.com", IsActive: true,
		PasswordHash: flowengine.TestHash("old"), Groups: []string{"staff"}, CreatedAt: writeT0}
	if err := st.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	e := &stageEnv{store: st, clock: clock, alice: alice}
	for _, s := range []**flowengine.Session{&e.current, &e.otherSes} {
		*s = &flowengine.Session{ID: flowengine.NewID(), UserID: alice.ID, CreatedAt: writeT0, LastSeen: writeT0,
			ExpiresAt: writeT0.Add(time.Hour)}
		if err := st.CreateSession(ctx, *s); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// stageContext is what the executor would hand a stage: the plan context holds
// prompt data (JSON-decoded) and, if pending is set, the pending user.
func (e *stageEnv) stageContext(prompt map[string]any, pending *flowengine.User, session *flowengine.Session) *flowengine.StageContext {
	planCtx := map[string]any{}
	if prompt != nil {
		planCtx[flowengine.CtxPromptData] = prompt
	}
	if pending != nil {
		planCtx[flowengine.CtxPendingUser] = pending.ID
	}
	return &flowengine.StageContext{
		Flow: &flowengine.Flow{Slug: "enroll"}, StageName: "write", StageType: "user_write",
		Request: &flowengine.Request{ClientIP: "192.0.2.7", Session: session},
		Context: planCtx, State: map[string]any{}, Store: e.store, Clock: e.clock,
	}
}

func newStage(t testing.TB, typ string, config map[string]any) flowengine.Stage {
	t.Helper()
	s, err := stages.Types()[typ](flowengine.StageDef{Name: "s", Type: typ, Config: config})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func submit(t *testing.T, s flowengine.Stage, sc *flowengine.StageContext) flowengine.Outcome {
	t.Helper()
	ctx := context.Background()
	if ch, err := s.Challenge(ctx, sc); err != nil || ch != nil {
		t.Fatalf("challenge %v, %v: want none", ch, err)
	}
	out, err := s.Submit(ctx, sc, flowengine.Answer{})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return out
}

func verify(t *testing.T, u *flowengine.User, password string) bool {
	t.Helper()
	ok, err := flowengine.VerifyPassword(u.PasswordHash, password)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return ok
}

func TestUserWrite(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		config  map[string]any
		prompt  map[string]any
		pending bool // alice is the pending user
		session bool // the request comes with alice's current session
		kind    flowengine.OutcomeKind
		errKey  string // field error expected with OutcomeInvalid
		check   func(t *testing.T, e *stageEnv, sc *flowengine.StageContext)
	}{
		{
			name: "create from prompt data",
			prompt: map[string]any{"username": " bob ", "email": "bob@example.com", "name": "Bob", "password": "s3cret",
				"password_repeat": "s3cret", "attributes.locale": "de", "attributes.a.b": 1.0,
				"is_active": false, "groups": []any{"admins"}, "id": "forged", "password_hash": "x",
				"attributes.flowgate.consent.f.s": "2026-01-01T00:00:00Z"}, // reserved: never set by an answer
			kind: flowengine.OutcomeContinue,
			check: func(t *testing.T, e *stageEnv, sc *flowengine.StageContext) {
				u, err := e.store.GetUserByUsername(ctx, "bob")
				if err != nil {
					t.Fatal(err)
				}
				if u.ID == "forged" || u.Email != "bob@example.com" || u.Name != "Bob" || !u.IsActive || len(u.Groups) != 0 ||
					!u.CreatedAt.Equal(writeT0) || u.Attributes["locale"] != "de" || u.Attributes["a.b"] != 1.0 || len(u.Attributes) != 2 {
					t.Fatalf("created %+v", u)
				}
				if !verify(t, u, "s3cret") {
					t.Fatal("password does not verify")
				}
				if sc.Context[flowengine.CtxPendingUser] != u.ID {
					t.Fatalf("pending user %v, want %s", sc.Context[flowengine.CtxPendingUser], u.ID)
				}
			},
		},
		{
			name:   "create inactive in group",
			config: map[string]any{"create_users_as_inactive": true, "create_users_group": "members"},
			prompt: map[string]any{"username": "carol", "is_active": true},
			kind:   flowengine.OutcomeContinue,
			check: func(t *testing.T, e *stageEnv, _ *flowengine.StageContext) {
				u, err := e.store.GetUserByUsername(ctx, "carol")
				if err != nil {
					t.Fatal(err)
				}
				if u.IsActive || len(u.Groups) != 1 || u.Groups[0] != "members" || u.PasswordHash != "" {
					t.Fatalf("created %+v", u)
				}
			},
		},
		{
			name:    "always_create ignores the pending user",
			config:  map[string]any{"user_creation_mode": "always_create"},
			prompt:  map[string]any{"username": "dave"},
			pending: true,
			kind:    flowengine.OutcomeContinue,
			check: func(t *testing.T, e *stageEnv, sc *flowengine.StageContext) {
				u, err := e.store.GetUserByUsername(ctx, "dave")
				if err != nil || sc.Context[flowengine.CtxPendingUser] != u.ID {
					t.Fatalf("dave %v, %v; pending %v", u, err, sc.Context[flowengine.CtxPendingUser])
				}
			},
		},
		{
			name:    "update pending user's email and password",
			prompt:  map[string]any{"email": "alice@example.org", "password": "new", "is_active": false, "groups": []any{"admins"}},
			pending: true,
			session: true,
			kind:    flowengine.OutcomeContinue,
			check: func(t *testing.T, e *stageEnv, sc *flowengine.StageContext) {
				u, err := e.store.GetUser(ctx, e.alice.ID)
				if err != nil {
					t.Fatal(err)
				}
				if u.Email != "alice@example.org" || u.Username != "alice" || !u.IsActive || len(u.Groups) != 1 || u.Groups[0] != "staff" {
					t.Fatalf("updated %+v", u)
				}
				if !verify(t, u, "new") || verify(t, u, "old") {
					t.Fatal("password not changed")
				}
				list, _ := e.store.ListUserSessions(ctx, e.alice.ID)
				if len(list) != 1 || list[0].ID != e.current.ID {
					t.Fatalf("sessions left %v, want only the current one", list)
				}
			},
		},
		{
			name:    "update without password keeps sessions",
			config:  map[string]any{"user_creation_mode": "never_create"},
			prompt:  map[string]any{"name": "Alice A.", "attributes.team": "blue"},
			pending: true,
			kind:    flowengine.OutcomeContinue,
			check: func(t *testing.T, e *stageEnv, _ *flowengine.StageContext) {
				u, _ := e.store.GetUser(ctx, e.alice.ID)
				if u.Name != "Alice A." || u.Attributes["team"] != "blue" || !verify(t, u, "old") {
					t.Fatalf("updated %+v", u)
				}
				if list, _ := e.store.ListUserSessions(ctx, e.alice.ID); len(list) != 2 {
					t.Fatalf("%d sessions left, want 2", len(list))
				}
			},
		},
		{
			name:   "never_create without a pending user",
			config: map[string]any{"user_creation_mode": "never_create"},
			prompt: map[string]any{"username": "erin"},
			kind:   flowengine.OutcomeDeny,
		},
		{
			name:   "duplicate username",
			prompt: map[string]any{"username": "ALICE", "email": "other@example.com", "password": "pw"},
			kind:   flowengine.OutcomeInvalid,
			errKey: "username",
		},
		{
			name:   "duplicate email",
			prompt: map[string]any{"username": "frank", "email": "alice@example.com"},
			kind:   flowengine.OutcomeInvalid,
			errKey: "email",
		},
		{
			name:    "update to a taken username",
			prompt:  map[string]any{"username": "taken"},
			pending: true,
			kind:    flowengine.OutcomeInvalid,
			errKey:  "username",
		},
		{
			name:   "invalid email",
			prompt: map[string]any{"username": "gina", "email": "Gina <gina@example.com>"},
			kind:   flowengine.OutcomeInvalid,
			errKey: "email",
		},
		{
			name:   "invalid username",
			prompt: map[string]any{"username": "../etc"},
			kind:   flowengine.OutcomeInvalid,
			errKey: "username",
		},
		{
			name:   "no username to create",
			prompt: map[string]any{"email": "hal@example.com"},
			kind:   flowengine.OutcomeInvalid,
			errKey: "username",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			if err := e.store.CreateUser(ctx, &flowengine.User{ID: flowengine.NewID(), Username: "taken", IsActive: true}); err != nil {
				t.Fatal(err)
			}
			before, _ := e.store.ListUsers(ctx)
			var pending *flowengine.User
			if tc.pending {
				pending = e.alice
			}
			var session *flowengine.Session
			if tc.session {
				session = e.current
			}
			sc := e.stageContext(tc.prompt, pending, session)
			out := submit(t, newStage(t, "user_write", tc.config), sc)
			if out.Kind != tc.kind {
				t.Fatalf("outcome %+v, want kind %d", out, tc.kind)
			}
			if tc.kind == flowengine.OutcomeInvalid && len(out.Errors[tc.errKey]) == 0 {
				t.Fatalf("errors %v, want one on %q", out.Errors, tc.errKey)
			}
			if tc.kind != flowengine.OutcomeContinue {
				// Nothing written.
				after, _ := e.store.ListUsers(ctx)
				if a, b := usersJSON(t, after), usersJSON(t, before); a != b {
					t.Fatalf("users changed: %s, was %s", a, b)
				}
			}
			if tc.check != nil {
				tc.check(t, e, sc)
			}
		})
	}
}

func usersJSON(t *testing.T, users []*flowengine.User) string {
	t.Helper()
	raw, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Ten enrollments racing for one username: the store's atomic CreateUser lets
// exactly one win, the others get a field error.
func TestUserWriteConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	s := newStage(t, "user_write", map[string]any{"user_creation_mode": "always_create"})
	var wg sync.WaitGroup
	outs := make([]flowengine.Outcome, 10)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := e.stageContext(map[string]any{"username": "zoe", "email": fmt.Sprintf("zoe%d@example.com", i)}, nil, nil)
			out, err := s.Submit(ctx, sc, flowengine.Answer{})
			if err != nil {
				t.Error(err)
			}
			outs[i] = out
		}()
	}
	wg.Wait()
	won := 0
	for _, out := range outs {
		switch {
		case out.Kind == flowengine.OutcomeContinue:
			won++
		case len(out.Errors["username"]) == 0:
			t.Errorf("loser's outcome %+v, want a username error", out)
		}
	}
	users, _ := e.store.ListUsers(ctx)
	zoes := 0
	for _, u := range users {
		if u.Username == "zoe" {
			zoes++
		}
	}
	if won != 1 || zoes != 1 {
		t.Fatalf("%d won, %d users named zoe; want 1 and 1", won, zoes)
	}
}
