package flowengine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

const policyDocs = `
version: 1
policies:
  - name: allow
    rego: |
      package t.allow
      import rego.v1
      allow := true
  - name: deny
    rego: |
      package t.deny
      import rego.v1
      default allow := false
      messages contains "denied by policy" if not allow
  - name: undefined
    rego: |
      package t.undefined
      import rego.v1
      allow if input.nothing == 1
  - name: error
    rego: |
      package t.error
      import rego.v1
      allow if to_number("not a number") > 1
  - name: slow
    rego: |
      package t.slow
      import rego.v1
      allow if {
        some i in numbers.range(1, 100000000)
        i < 0
      }
  - name: path-is-x
    rego: |
      package t.path
      import rego.v1
      allow if input.request.path == "/x"
  - name: has-user
    rego: |
      package t.hasuser
      import rego.v1
      allow if input.context.pending_user
  - name: shows-input
    rego: |
      package t.input
      import rego.v1
      allow if {
        input.flow.slug == "p"
        input.stage.type == "dummy"
        input.request.headers["user-agent"] == "test-agent"
        not input.request.headers.cookie
        input.user.authenticated == false
      }
stages:
  - {name: d1, type: dummy}
  - {name: d2, type: dummy}
  - {name: d3, type: dummy}
  - {name: login, type: user_login}
`

// flowWith returns a blueprint flow "p" (enrollment, so no login stage is needed)
// whose flow policies and first stage binding are given as YAML fragments.
func flowWith(flowPolicies, stageBinding string) string {
	return policyDocs + `
flows:
  - slug: p
    designation: enrollment
    ` + flowPolicies + `
    stages:
      - ` + stageBinding + `
      - {stage: d2, order: 20}
`
}

// stageRan reports whether d1 was planned and shown first.
func stageRan(t *testing.T, flowPolicies, binding string) (first string, res *flowengine.Result) {
	t.Helper()
	e := newEnv(t, memoryStore, flowWith(flowPolicies, binding))
	res = e.start("p", req(""))
	return res.Response.Stage.Name, res
}

func TestPolicyBindings(t *testing.T) {
	cases := []struct {
		name    string
		binding string
		runs    bool
	}{
		{"allow", `{stage: d1, order: 10, policies: [{policy: allow}]}`, true},
		{"deny", `{stage: d1, order: 10, policies: [{policy: deny}]}`, false},
		{"undefined is false", `{stage: d1, order: 10, policies: [{policy: undefined}]}`, false},
		{"negate flips", `{stage: d1, order: 10, policies: [{policy: deny, negate: true}]}`, true},
		{"error fails closed", `{stage: d1, order: 10, policies: [{policy: error}]}`, false},
		{"error is not negated", `{stage: d1, order: 10, policies: [{policy: error, negate: true}]}`, false},
		{"error takes failure_result", `{stage: d1, order: 10, policies: [{policy: error, failure_result: true}]}`, true},
		{"timeout takes failure_result", `{stage: d1, order: 10, policies: [{policy: slow, timeout: 20ms, failure_result: true, negate: true}]}`, true},
		{"timeout fails closed", `{stage: d1, order: 10, policies: [{policy: slow, timeout: 20ms, negate: true}]}`, false},
		{"disabled binding ignored", `{stage: d1, order: 10, policies: [{policy: deny, enabled: false}]}`, true},
		{"any passes with one", `{stage: d1, order: 10, policies: [{policy: deny}, {policy: allow}]}`, true},
		{"all fails with one", `{stage: d1, order: 10, policy_engine_mode: all, policies: [{policy: deny}, {policy: allow}]}`, false},
		{"all passes with all", `{stage: d1, order: 10, policy_engine_mode: all, policies: [{policy: allow}, {policy: allow, order: 1}]}`, true},
		{"group binding without user", `{stage: d1, order: 10, policies: [{group: staff}]}`, false},
		{"user binding negated", `{stage: d1, order: 10, policies: [{user: nobody, negate: true}]}`, true},
		{"request input", `{stage: d1, order: 10, policies: [{policy: path-is-x}]}`, true},
		{"documented input", `{stage: d1, order: 10, policies: [{policy: shows-input}]}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, memoryStore, flowWith("", tc.binding))
			r := req("")
			r.Path = "/x"
			r.Header["Cookie"] = []string{"flowgate_session=secret"}
			res := e.start("p", r)
			first := res.Response.Stage.Name
			if ran := first == "d1"; ran != tc.runs {
				t.Fatalf("d1 ran = %v, want %v (records %+v)", ran, tc.runs, res.Records)
			}
			if !tc.runs {
				// Skipping is recorded, never silent.
				found := false
				for _, rec := range res.Records {
					found = found || (rec.Scope == "stage d1" && !rec.Outcome)
				}
				if !found {
					t.Fatalf("skip of d1 not recorded: %+v", res.Records)
				}
			}
		})
	}
}

func TestGroupAndUserBindingsWithSession(t *testing.T) {
	e := newEnv(t, memoryStore, flowWith("", `{stage: d1, order: 10, policies: [{group: staff}, {user: OTHER}]}`))
	staff := e.addUser("sam", "pw", "staff")
	plain := e.addUser("pat", "pw")
	r := req("")
	r.User = staff
	if got := e.start("p", r).Response.Stage.Name; got != "d1" {
		t.Fatalf("staff member: first stage %s", got)
	}
	r.User = plain
	if got := e.start("p", r).Response.Stage.Name; got != "d2" {
		t.Fatalf("non-member: first stage %s", got)
	}
}

func TestErrorRecorded(t *testing.T) {
	_, res := stageRan(t, "", `{stage: d1, order: 10, policies: [{policy: error}]}`)
	for _, rec := range res.Records {
		if rec.Binding == "policy error" && rec.Error != "" && !rec.Outcome {
			return
		}
	}
	t.Fatalf("policy error not recorded: %+v", res.Records)
}

func TestEvaluateOnPlanVersusReEvaluate(t *testing.T) {
	// has-user passes only once identification set pending_user; evaluated at plan
	// time it fails and drops the stage, re-evaluated just before the stage it runs.
	doc := policyDocs + `
  - {name: id, type: identification}
flows:
  - slug: p
    designation: enrollment
    stages:
      - {stage: id, order: 1}
      - {stage: d1, order: 2, evaluate_on_plan: true, re_evaluate_policies: false, policies: [{policy: has-user}]}
      - {stage: d2, order: 3, policies: [{policy: has-user}]}
      - {stage: d3, order: 4}
`
	e := newEnv(t, memoryStore, doc)
	e.addUser("ida", "pw")
	r := req("")
	res := e.start("p", r)
	if res.Response.Stage.Steps != 3 {
		t.Fatalf("plan has %d steps, want 3 (d1 dropped at plan time)", res.Response.Stage.Steps)
	}
	res = e.answer(res, r, "uid_field", "ida")
	if res.Response.Stage.Name != "d2" {
		t.Fatalf("after identification: %s, want d2 (re-evaluated, now passes)", res.Response.Stage.Name)
	}
	// Without a user, d2 is skipped just before it would run, and that is recorded.
	e2 := newEnv(t, memoryStore, doc)
	res = e2.start("p", r)
	res = e2.answer(res, r, "uid_field", "nobody")
	if res.Response.Stage.Name != "d3" {
		t.Fatalf("unknown user: %s, want d3", res.Response.Stage.Name)
	}
	if rec := res.Records[len(res.Records)-1]; rec.Scope != "stage d2" || rec.Outcome {
		t.Fatalf("skip of d2 not recorded: %+v", res.Records)
	}
}

func TestFlowPoliciesAndDeniedActions(t *testing.T) {
	cases := []struct {
		name, action, query string
		wantType, wantTo    string
		wantMsg             string
	}{
		{"message_continue with next", "message_continue", "next=/back", flowengine.TypeRedirect, "/back", ""},
		{"message_continue without next", "message_continue", "", flowengine.TypeDenied, "", "denied by policy"},
		{"message_continue with bad next", "message_continue", "next=//evil.example", flowengine.TypeDenied, "", "denied by policy"},
		{"message ignores next", "message", "next=/back", flowengine.TypeDenied, "", "denied by policy"},
		{"continue with next", "continue", "next=/back", flowengine.TypeRedirect, "/back", ""},
		{"continue without next", "continue", "", flowengine.TypeRedirect, "/", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, memoryStore, flowWith("denied_action: "+tc.action+"\n    policies: [{policy: deny}]", `{stage: d1, order: 10}`))
			res := e.start("p", req(tc.query))
			if res.Response.Type != tc.wantType || res.Response.To != tc.wantTo || !strings.Contains(res.Response.Message, tc.wantMsg) {
				t.Fatalf("got %+v", res.Response)
			}
		})
	}
}

func TestAuthenticationRequirement(t *testing.T) {
	for _, tc := range []struct {
		req      string
		loggedIn bool
		runs     bool
	}{
		{"none", false, true}, {"none", true, true},
		{"require_authenticated", false, false}, {"require_authenticated", true, true},
		{"require_unauthenticated", false, true}, {"require_unauthenticated", true, false},
	} {
		e := newEnv(t, memoryStore, flowWith("authentication: "+tc.req, `{stage: d1, order: 10}`))
		r := req("")
		if tc.loggedIn {
			r.User = e.addUser("lou", "pw")
		}
		res := e.start("p", r)
		if ran := res.Response.Type == flowengine.TypeChallenge; ran != tc.runs {
			t.Errorf("%s, logged in %v: ran %v (%+v)", tc.req, tc.loggedIn, ran, res.Response)
		}
	}
}

func TestInvalidResponseActions(t *testing.T) {
	doc := func(action string) string {
		return policyDocs + `
  - {name: id, type: identification, config: {pretend_user_exists: false}}
flows:
  - slug: p
    designation: enrollment
    stages:
      - {stage: d1, order: 1}
      - {stage: id, order: 2, invalid_response_action: ` + action + `}
`
	}
	for _, tc := range []struct{ action, wantStage string }{
		{"retry", "id"}, {"restart", "d1"}, {"restart_with_context", "d1"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			e := newEnv(t, memoryStore, doc(tc.action))
			r := req("next=/kept")
			res := e.start("p", r)
			res = e.answer(res, r)
			res = e.answer(res, r, "uid_field", "ghost")
			if res.Response.Stage.Name != tc.wantStage {
				t.Fatalf("after invalid answer at %s: stage %s", tc.action, res.Response.Stage.Name)
			}
			if tc.action == "retry" && res.Response.Errors["uid_field"] == nil {
				t.Fatal("retry lost the field error")
			}
			// next survives every kind of restart.
			res = e.answer(res, r)
			if tc.action == "retry" {
				return
			}
			e.addUser("ghost", "pw")
			res = e.answer(res, r, "uid_field", "ghost")
			if res.Response.To != "/kept" {
				t.Fatalf("next lost across %s: %+v", tc.action, res.Response)
			}
		})
	}
	// restart_with_context keeps what earlier stages stored; restart clears it.
	for _, tc := range []struct {
		action string
		keeps  bool
	}{{"restart_with_context", true}, {"restart", false}} {
		e := newEnv(t, memoryStore, doc(tc.action))
		r := req("")
		res := e.start("p", r)
		res = e.answer(res, r)
		res = e.answer(res, r, "uid_field", "ghost")
		res = e.answer(res, r)
		wantChallenge(t, res, "identification")
		if got := res.Response.Fields[0].Value; (got == "ghost") != tc.keeps {
			t.Errorf("%s: remembered identifier %q", tc.action, got)
		}
	}
}

func TestDenyStageAndRedirectPrecedence(t *testing.T) {
	e := newEnv(t, memoryStore, policyDocs+`
  - {name: no, type: deny, config: {deny_message: "Sign-ups are closed."}}
flows:
  - slug: p
    designation: enrollment
    stages: [{stage: no, order: 1}]
`)
	res := e.start("p", req("next=/x"))
	if res.Response.Type != flowengine.TypeDenied || res.Response.Message != "Sign-ups are closed." || res.ExecutionID != "" {
		t.Fatalf("deny stage: %+v", res)
	}
}

func TestUnknownFlow(t *testing.T) {
	e := newEnv(t, memoryStore)
	if _, err := e.engine.Start(context.Background(), "nope", req("")); err == nil {
		t.Fatal("unknown slug started")
	}
}
