package flowengine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

const explainFlows = `
version: 1
policies:
  - name: not-blocked
    rego: |
      package flowgate.not_blocked
      import rego.v1
      default allow := false
      allow if input.request.client_ip != "198.51.100.66"
      messages contains "This address is blocked." if not allow
  - name: office
    rego: |
      package flowgate.office
      import rego.v1
      default allow := false
      allow if startswith(input.request.client_ip, "10.")
  - name: slow
    rego: |
      package flowgate.slow
      import rego.v1
      allow if input.user.authenticated
stages:
  - {name: ex-id, type: identification}
  - {name: ex-pw, type: password}
  - {name: ex-office, type: dummy}
  - {name: ex-deny, type: deny, config: {deny_message: "Staff only."}}
  - {name: ex-audit, type: dummy}
  - {name: ex-login, type: user_login}
flows:
  - slug: ex-login
    name: Explained
    designation: authentication
    policies: [{policy: not-blocked}]
    stages:
      - {stage: ex-id, order: 10}
      - {stage: ex-pw, order: 20}
      - {stage: ex-office, order: 25, evaluate_on_plan: true, re_evaluate_policies: false, policies: [{policy: office}]}
      - {stage: ex-deny, order: 30, policies: [{group: staff, negate: true}]}
      - {stage: ex-audit, order: 40, policies: [{policy: slow, timeout: 1ns}]}
      - {stage: ex-login, order: 100}
  - slug: ex-plan-error
    name: Erroring at planning
    designation: recovery
    stages:
      - {stage: ex-audit, order: 10, evaluate_on_plan: true, policies: [{policy: slow, timeout: 1ns}]}
`

const explainDesignations = `
version: 1
policies:
  - name: staff-only
    rego: |
      package flowgate.staff_only
      import rego.v1
      default allow := false
      allow if "staff" in input.user.groups
      messages contains "staff only" if not allow
  - name: slow
    rego: |
      package flowgate.slow
      import rego.v1
      allow if input.user.authenticated
stages:
  - {name: d-id, type: identification}
  - {name: d-pw, type: password}
  - {name: d-login, type: user_login}
  - {name: d-dummy, type: dummy}
flows:
  - slug: des-staff
    designation: authentication
    order: 10
    policies: [{policy: staff-only}]
    stages: [{stage: d-id, order: 10}, {stage: d-pw, order: 20}, {stage: d-login, order: 30}]
  - slug: des-all
    designation: authentication
    order: 20
    stages: [{stage: d-id, order: 10}, {stage: d-pw, order: 20}, {stage: d-login, order: 30}]
  - slug: des-broken
    designation: enrollment
    order: 0
    policies: [{policy: slow, timeout: 1ns}]
    stages: [{stage: d-dummy, order: 10}]
  - slug: des-enroll
    designation: enrollment
    order: 5
    stages: [{stage: d-dummy, order: 10}]
`

// watchedStore records every write, so a test can check that Explain makes none.
type watchedStore struct {
	flowengine.Store
	mu     sync.Mutex
	writes []string
}

func (s *watchedStore) wrote(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, op)
}

func (s *watchedStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writes
	s.writes = nil
	return w
}

func (s *watchedStore) CreateUser(ctx context.Context, u *flowengine.User) error {
	s.wrote("CreateUser")
	return s.Store.CreateUser(ctx, u)
}

func (s *watchedStore) UpdateUser(ctx context.Context, u *flowengine.User) error {
	s.wrote("UpdateUser")
	return s.Store.UpdateUser(ctx, u)
}

func (s *watchedStore) UpdateUserIf(ctx context.Context, u, prev *flowengine.User) error {
	s.wrote("UpdateUserIf")
	return s.Store.UpdateUserIf(ctx, u, prev)
}

func (s *watchedStore) DeleteUser(ctx context.Context, id string) error {
	s.wrote("DeleteUser")
	return s.Store.DeleteUser(ctx, id)
}

func (s *watchedStore) CreateSession(ctx context.Context, sess *flowengine.Session) error {
	s.wrote("CreateSession")
	return s.Store.CreateSession(ctx, sess)
}

func (s *watchedStore) TouchSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	s.wrote("TouchSession")
	return s.Store.TouchSession(ctx, id, lastSeen, expiresAt)
}

func (s *watchedStore) DeleteSession(ctx context.Context, id string) error {
	s.wrote("DeleteSession")
	return s.Store.DeleteSession(ctx, id)
}

func (s *watchedStore) DeleteUserSessions(ctx context.Context, userID string, keep ...string) error {
	s.wrote("DeleteUserSessions")
	return s.Store.DeleteUserSessions(ctx, userID, keep...)
}

func (s *watchedStore) PutExecution(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	s.wrote("PutExecution")
	return s.Store.PutExecution(ctx, id, data, ttl)
}

func (s *watchedStore) DeleteExecution(ctx context.Context, id string) error {
	s.wrote("DeleteExecution")
	return s.Store.DeleteExecution(ctx, id)
}

func (s *watchedStore) ApplyConfig(ctx context.Context, base string, cfg *flowengine.Config, users []flowengine.SeedUser) error {
	s.wrote("ApplyConfig")
	return s.Store.ApplyConfig(ctx, base, cfg, users)
}

func (s *watchedStore) IncrCounter(ctx context.Context, key string, window time.Duration) (int64, error) {
	s.wrote("IncrCounter " + key)
	return s.Store.IncrCounter(ctx, key, window)
}

func (s *watchedStore) DeleteCounter(ctx context.Context, key string) error {
	s.wrote("DeleteCounter " + key)
	return s.Store.DeleteCounter(ctx, key)
}

// heardEvents records what the engine reports to its observer.
type heardEvents struct {
	mu     sync.Mutex
	events []flowengine.Event
}

func (h *heardEvents) Observe(ev flowengine.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *heardEvents) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

type explainEnv struct {
	engine     *flowengine.Engine
	store      *watchedStore
	heard      *heardEvents
	alice, bob *flowengine.User
	memory     *memory.Store
}

// newExplainEnv builds an engine on a watched memory store, with the blueprints
// applied, alice (staff) and bob, and (builtIns) the default flows marked
// built-in as the gateway installs them.
func newExplainEnv(t *testing.T, builtIns bool, docs ...string) *explainEnv {
	t.Helper()
	mem := memory.New(flowengine.NewManualClock(t0))
	x := &explainEnv{store: &watchedStore{Store: mem}, heard: &heardEvents{}, memory: mem}
	e, err := flowengine.New(flowengine.Options{Store: x.store, Stages: stages.Types(), Policies: compileRego,
		Clock: flowengine.NewManualClock(t0), Observer: x.heard})
	if err != nil {
		t.Fatal(err)
	}
	x.engine = e
	ctx := context.Background()
	if builtIns {
		def := blueprint.Defaults().Config
		for i := range def.Flows {
			def.Flows[i].BuiltIn = true
		}
		if err := e.Apply(ctx, flowengine.Change{Config: def}); err != nil {
			t.Fatal(err)
		}
	}
	for _, doc := range docs {
		if err := applyYAML(e, doc); err != nil {
			t.Fatal(err)
		}
	}
	x.alice = &flowengine.User{ID: flowengine.NewID(), Username: "alice", IsActive: true, Groups: []string{"staff"}}
	x.bob = &flowengine.User{ID: flowengine.NewID(), Username: "bob", IsActive: true}
	for _, u := range []*flowengine.User{x.alice, x.bob} {
		if err := x.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	x.store.take()
	x.heard.events = nil
	return x
}

// explain runs Explain and checks that it wrote nothing and reported nothing.
func (x *explainEnv) explain(t *testing.T, q flowengine.ExplainQuery) *flowengine.Explanation {
	t.Helper()
	got, err := x.engine.Explain(context.Background(), q)
	if err != nil {
		t.Fatalf("Explain(%+v): %v", q, err)
	}
	if w := x.store.take(); len(w) > 0 {
		t.Fatalf("Explain wrote to the store: %v", w)
	}
	if n := x.heard.count(); n > 0 {
		t.Fatalf("Explain reported %d events to the observer", n)
	}
	// The JSON form is what the admin API answers: it must encode.
	if _, err := json.Marshal(got); err != nil {
		t.Fatal(err)
	}
	return got
}

func explainReq(ip, query string) *flowengine.Request {
	r := req(query)
	r.ClientIP = ip
	return r
}

func stageVerdicts(x *flowengine.Explanation) map[string]flowengine.Verdict {
	out := map[string]flowengine.Verdict{}
	for _, s := range x.Stages {
		out[s.Stage] = s.Verdict
	}
	return out
}

func findStage(t *testing.T, x *flowengine.Explanation, name string) flowengine.StageExplanation {
	t.Helper()
	for _, s := range x.Stages {
		if s.Stage == name {
			return s
		}
	}
	t.Fatalf("no stage %s in %+v", name, x.Stages)
	return flowengine.StageExplanation{}
}

func TestExplainFlow(t *testing.T) {
	env := newExplainEnv(t, false, explainFlows)
	type want struct {
		result   flowengine.ExplainResult
		at       string
		message  string
		to       string
		plan     string
		runs     string
		verdicts map[string]flowengine.Verdict
		text     []string
	}
	for _, tc := range []struct {
		name     string
		user     *flowengine.User
		signedIn bool
		ip       string
		query    string
		want     want
	}{
		{
			name: "staff: the deny is skipped, the erroring policy stops the execution",
			user: env.alice, ip: "192.0.2.7",
			want: want{
				result: flowengine.ExplainUnavailable, at: "stage ex-audit", message: flowengine.UnavailableMessage,
				plan: "ex-id ex-pw ex-deny ex-audit ex-login", runs: "ex-id ex-pw",
				verdicts: map[string]flowengine.Verdict{"ex-id": "runs", "ex-pw": "runs", "ex-office": "dropped",
					"ex-deny": "skipped", "ex-audit": "failed", "ex-login": "not_reached"},
				text: []string{"ex-deny: skipped [deny]", "as if the user were identified", "ex-office: dropped",
					"ex-audit: failed", "Sign-in is unavailable right now.", "group staff (negated): fail",
					"Outcome: unavailable at stage ex-audit"},
			},
		},
		{
			name: "non-staff from the office: the deny runs",
			user: env.bob, ip: "10.1.2.3",
			want: want{
				result: flowengine.ExplainDenied, at: "stage ex-deny",
				plan: "ex-id ex-pw ex-office ex-deny ex-audit ex-login", runs: "ex-id ex-pw ex-office ex-deny",
				verdicts: map[string]flowengine.Verdict{"ex-office": "runs", "ex-deny": "runs", "ex-audit": "not_reached",
					"ex-login": "not_reached"},
				text: []string{"ex-deny: runs [deny]", "ex-office: runs", "bob, not signed in", "Outcome: denied at stage ex-deny"},
			},
		},
		{
			name: "anonymous: the deny runs",
			ip:   "192.0.2.7",
			want: want{
				result: flowengine.ExplainDenied, at: "stage ex-deny",
				plan: "ex-id ex-pw ex-deny ex-audit ex-login", runs: "ex-id ex-pw ex-deny",
				verdicts: map[string]flowengine.Verdict{"ex-office": "dropped", "ex-deny": "runs"},
				text:     []string{"for an anonymous visitor", "ex-deny: runs"},
			},
		},
		{
			name: "flow policy denies: the message",
			user: env.alice, ip: "198.51.100.66",
			want: want{
				result: flowengine.ExplainDenied, at: "flow policies", message: "This address is blocked.",
				verdicts: map[string]flowengine.Verdict{"ex-id": "not_reached", "ex-deny": "not_reached"},
				text:     []string{"Flow policies (any) → fail", "policy not-blocked: fail", `"This address is blocked."`},
			},
		},
		{
			name: "flow policy denies with a next: message_continue redirects",
			user: env.alice, ip: "198.51.100.66", query: "next=/back",
			want: want{result: flowengine.ExplainRedirect, at: "flow policies", to: "/back", text: []string{"Outcome: redirect at flow policies, to /back"}},
		},
		{
			name: "signed-in staff: planning sees them too",
			user: env.alice, signedIn: true, ip: "192.0.2.7",
			want: want{
				// The slow policy still times out: a timeout is an error whoever asks.
				result: flowengine.ExplainUnavailable, at: "stage ex-audit", message: flowengine.UnavailableMessage,
				verdicts: map[string]flowengine.Verdict{"ex-deny": "skipped", "ex-audit": "failed"},
				text:     []string{"alice, signed in"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := env.explain(t, flowengine.ExplainQuery{Flow: "ex-login", User: tc.user, SignedIn: tc.signedIn,
				Request: explainReq(tc.ip, tc.query)})
			w := tc.want
			o := got.Outcome
			if o.Result != w.result || o.At != w.at || o.Message != w.message || o.To != w.to {
				t.Fatalf("outcome %+v, want %+v", o, w)
			}
			if got.Flow != "ex-login" || got.Designation != "authentication" || got.Selection != nil {
				t.Fatalf("flow %q designation %q selection %v", got.Flow, got.Designation, got.Selection)
			}
			if w.plan != "" && strings.Join(got.Plan, " ") != w.plan {
				t.Fatalf("plan %v, want %s", got.Plan, w.plan)
			}
			if w.runs != "" && strings.Join(got.Runs, " ") != w.runs {
				t.Fatalf("runs %v, want %s", got.Runs, w.runs)
			}
			verdicts := stageVerdicts(got)
			for stage, v := range w.verdicts {
				if verdicts[stage] != v {
					t.Errorf("stage %s: %s, want %s", stage, verdicts[stage], v)
				}
			}
			text := got.Text()
			for _, s := range w.text {
				if !strings.Contains(text, s) {
					t.Errorf("text lacks %q:\n%s", s, text)
				}
			}
			if t.Failed() {
				t.Logf("report:\n%s", text)
			}
		})
	}
}

// The structured details behind the verdicts: records, negate, failure
// results, and who the policies saw.
func TestExplainFlowDetails(t *testing.T) {
	env := newExplainEnv(t, false, explainFlows)
	got := env.explain(t, flowengine.ExplainQuery{Flow: "ex-login", User: env.alice, Request: explainReq("192.0.2.7", "")})
	if a := got.Authentication; a == nil || a.Requirement != flowengine.AuthNone || !a.Met {
		t.Fatalf("authentication check %+v", a)
	}
	fp := got.FlowPolicies
	if fp == nil || !fp.Passed || len(fp.Bindings) != 1 || fp.Bindings[0].Binding != "policy not-blocked" || fp.Bindings[0].Scope != "flow ex-login" {
		t.Fatalf("flow policies %+v", fp)
	}
	office := findStage(t, got, "ex-office")
	if office.EvaluateOnPlan != flowengine.VerdictDropped || office.PlanPolicies == nil || office.PlanPolicies.Passed ||
		office.ReEvaluate != "" || office.ReEvaluatePolicies != nil {
		t.Fatalf("evaluate_on_plan binding %+v", office)
	}
	deny := findStage(t, got, "ex-deny")
	if deny.EvaluateOnPlan != "" || deny.PlanPolicies != nil || deny.ReEvaluate != flowengine.VerdictSkipped {
		t.Fatalf("deny binding %+v", deny)
	}
	if b := deny.ReEvaluatePolicies.Bindings; len(b) != 1 || b[0].Binding != "group staff" || !b[0].Negate || b[0].Outcome {
		t.Fatalf("deny binding records %+v", b)
	}
	audit := findStage(t, got, "ex-audit")
	rp := audit.ReEvaluatePolicies
	if audit.ReEvaluate != flowengine.VerdictFailed || rp == nil || !rp.Failed || len(rp.Bindings) != 1 ||
		!strings.Contains(rp.Bindings[0].Error, "timed out") || !rp.Bindings[0].Failed || rp.Bindings[0].FailureResult != nil {
		t.Fatalf("erroring binding %+v %+v", audit, rp)
	}
	if login := findStage(t, got, "ex-login"); login.ReEvaluate != "" || login.Type != "user_login" || login.Order != 100 {
		t.Fatalf("login binding %+v", login)
	}
	if got.Request.ClientIP != "192.0.2.7" || got.Request.Method != "GET" || got.User != "alice" || got.SignedIn {
		t.Fatalf("request %+v user %q signed in %v", got.Request, got.User, got.SignedIn)
	}

	// An error at planning stops the execution before any stage.
	plan := env.explain(t, flowengine.ExplainQuery{Flow: "ex-plan-error", User: env.bob})
	st := findStage(t, plan, "ex-audit")
	if plan.Outcome.Result != flowengine.ExplainUnavailable || plan.Outcome.At != "stage ex-audit" ||
		plan.Outcome.Message != flowengine.UnavailableMessage || st.EvaluateOnPlan != flowengine.VerdictFailed ||
		st.Verdict != flowengine.VerdictFailed || len(plan.Plan) != 0 || !st.PlanPolicies.Failed {
		t.Fatalf("error at planning: %+v %+v", plan.Outcome, st)
	}
	if text := plan.Text(); !strings.Contains(text, "no failure_result, so the execution stops with \"Sign-in is unavailable right now.\"") {
		t.Fatalf("text:\n%s", text)
	}
}

func TestExplainDesignation(t *testing.T) {
	env := newExplainEnv(t, true, explainDesignations)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		designation string
		user        *flowengine.User
		signedIn    bool
		chosen      string
		verdicts    string // candidate:verdict in selection order
		result      flowengine.ExplainResult
		text        []string
	}{
		{"signed-in staff get the staff flow", "authentication", env.alice, true, "des-staff",
			"des-staff:chosen des-all:not_reached default-authentication:not_reached", flowengine.ExplainProceeds,
			[]string{"1. des-staff (order 10): chosen", "3. default-authentication (order 0, built-in): not reached"}},
		{"signed-in non-staff fall through", "authentication", env.bob, true, "des-all",
			"des-staff:denied des-all:chosen default-authentication:not_reached", flowengine.ExplainProceeds,
			[]string{"1. des-staff (order 10): denied", `policy staff-only: fail ["staff only"]`, "2. des-all (order 20): chosen"}},
		{"staff not signed in are anonymous at selection", "authentication", env.alice, false, "des-all",
			"des-staff:denied des-all:chosen default-authentication:not_reached", flowengine.ExplainProceeds,
			[]string{"Selection and planning see an anonymous visitor"}},
		{"anonymous", "authentication", nil, false, "des-all",
			"des-staff:denied des-all:chosen default-authentication:not_reached", flowengine.ExplainProceeds, nil},
		{"only built-ins", "invalidation", nil, false, "default-invalidation",
			"default-invalidation:chosen", flowengine.ExplainProceeds, []string{"built-in): chosen"}},
		{"an erroring flow policy stops the selection", "enrollment", env.bob, true, "",
			"des-broken:failed des-enroll:not_reached", flowengine.ExplainUnavailable,
			[]string{"des-broken (order 0): failed", "Outcome: unavailable at selection"}},
		{"no flow", "recovery", nil, false, "", "", flowengine.ExplainNoFlow, []string{"No recovery flow applies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req("")
			got := env.explain(t, flowengine.ExplainQuery{Designation: tc.designation, User: tc.user, SignedIn: tc.signedIn, Request: r})
			sel := got.Selection
			if sel == nil || string(sel.Designation) != tc.designation || sel.Chosen != tc.chosen || got.Flow != tc.chosen {
				t.Fatalf("selection %+v, flow %q; want %s", sel, got.Flow, tc.chosen)
			}
			var verdicts []string
			for _, c := range sel.Candidates {
				verdicts = append(verdicts, c.Slug+":"+string(c.Verdict))
				if c.BuiltIn != strings.HasPrefix(c.Slug, "default-") {
					t.Errorf("candidate %s built-in %v", c.Slug, c.BuiltIn)
				}
			}
			if strings.Join(verdicts, " ") != tc.verdicts {
				t.Fatalf("candidates %s, want %s", strings.Join(verdicts, " "), tc.verdicts)
			}
			if got.Outcome.Result != tc.result {
				t.Fatalf("outcome %+v, want %s", got.Outcome, tc.result)
			}
			text := got.Text()
			for _, s := range tc.text {
				if !strings.Contains(text, s) {
					t.Errorf("text lacks %q:\n%s", s, text)
				}
			}
			// The engine's own selection agrees.
			fr := req("")
			if tc.signedIn {
				fr.User = tc.user
			}
			f, err := env.engine.FindFlow(ctx, flowengine.Designation(tc.designation), fr)
			env.store.take()
			env.heard.events = nil
			if tc.chosen != "" && (err != nil || f.Slug != tc.chosen) || tc.chosen == "" && err == nil {
				t.Fatalf("FindFlow disagrees: %v %v", f, err)
			}
		})
	}
}

func TestExplainRefusesBadQueries(t *testing.T) {
	env := newExplainEnv(t, false, explainFlows)
	for _, tc := range []struct {
		name string
		q    flowengine.ExplainQuery
		want error
	}{
		{"neither", flowengine.ExplainQuery{}, flowengine.ErrInvalidQuery},
		{"both", flowengine.ExplainQuery{Flow: "ex-login", Designation: "authentication"}, flowengine.ErrInvalidQuery},
		{"unknown designation", flowengine.ExplainQuery{Designation: "nope"}, flowengine.ErrInvalidQuery},
		{"signed in without a user", flowengine.ExplainQuery{Flow: "ex-login", SignedIn: true}, flowengine.ErrInvalidQuery},
		{"unknown flow", flowengine.ExplainQuery{Flow: "nope"}, flowengine.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := env.engine.Explain(context.Background(), tc.q); !errors.Is(err, tc.want) {
				t.Fatalf("Explain: %v, want %v", err, tc.want)
			}
		})
	}
}

// Explaining leaves no trace: no execution, no session, no counter, nothing
// for the observer — even for a flow whose real run would write all of them.
func TestExplainLeavesTheStoreUnchanged(t *testing.T) {
	env := newExplainEnv(t, true, explainDesignations)
	ctx := context.Background()
	before, err := env.memory.CountSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []flowengine.ExplainQuery{
		{Flow: "default-authentication", User: env.bob},
		{Flow: "des-all", User: env.alice, SignedIn: true},
		{Designation: "authentication", User: env.bob, SignedIn: true},
		{Designation: "enrollment"},
		{Flow: "default-invalidation", User: env.alice, SignedIn: true},
	} {
		env.explain(t, q) // fails on any store write or observer event
	}
	after, err := env.memory.CountSessions(ctx)
	if err != nil || after != before {
		t.Fatalf("sessions %d → %d (%v)", before, after, err)
	}
	for _, key := range []string{"execution:busy:", "user:bob", "ip:192.0.2.7"} {
		if n, _ := env.memory.GetCounter(ctx, key); n != 0 {
			t.Fatalf("counter %s = %d", key, n)
		}
	}
	// A real start of the same flow does write (the watch works).
	if _, err := env.engine.Start(ctx, "default-authentication", req("")); err != nil {
		t.Fatal(err)
	}
	if w := env.store.take(); len(w) == 0 {
		t.Fatal("a real start wrote nothing: the store watch is broken")
	}
}
