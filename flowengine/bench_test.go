package flowengine_test

import (
	"context"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
)

// Planning a 4-stage flow whose bindings carry 3 Rego policies (evaluated at plan
// time), up to the first challenge.
func BenchmarkPlanFourStagesThreePolicies(b *testing.B) {
	e := newEnv(b, memoryStore, policyDocs+`
flows:
  - slug: p
    designation: enrollment
    policies: [{policy: allow}]
    stages:
      - {stage: d1, order: 1, evaluate_on_plan: true, re_evaluate_policies: false, policies: [{policy: path-is-x}]}
      - {stage: d2, order: 2, evaluate_on_plan: true, re_evaluate_policies: false, policies: [{policy: allow}]}
      - {stage: d3, order: 3}
      - {stage: login, order: 4}
`)
	r := req("next=/app")
	r.Path = "/x"
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.engine.Start(ctx, "p", r)
		if err != nil || res.Response.Stage.Steps != 3 { // login shows no page
			b.Fatal(err, res.Response)
		}
	}
}

// A whole identification → password → login run on the memory store, with a
// lowest-cost argon2id hash so the hash does not dominate.
func BenchmarkLoginRun(b *testing.B) {
	clock := flowengine.NewManualClock(t0)
	st := newStore(b, memoryStore, clock)
	eng, err := flowengine.New(flowengine.Options{Store: st, Stages: stages.Types(), Policies: compileRego, Clock: clock,
		Services: flowengine.Services{KeepHashes: true}}) // measure the flow, not an upgrade to argon2id
	if err != nil {
		b.Fatal(err)
	}
	if err := applyYAML(eng, exampleBlueprint(b)); err != nil {
		b.Fatal(err)
	}
	e := &env{t: b, engine: eng, store: st, clock: clock}
	e.addUser("alice", "pw")
	r := req("next=/app")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.engine.Start(ctx, "default-authentication", r)
		if err != nil {
			b.Fatal(err)
		}
		res, err = e.engine.Answer(ctx, res.ExecutionID, r, map[string]any{"uid_field": "alice"})
		if err != nil {
			b.Fatal(err)
		}
		res, err = e.engine.Answer(ctx, res.ExecutionID, r, map[string]any{"password": "pw"})
		if err != nil || res.NewSession == nil {
			b.Fatal(err, res.Response)
		}
	}
}
