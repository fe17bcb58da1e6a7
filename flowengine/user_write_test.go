package flowengine_test

import (
	"context"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

// seedPrompt is a test-only stage type standing in for the prompt stage (not
// written yet): it puts its config's prompt_data into the plan context.
type seedPrompt struct{ data map[string]any }

func (seedPrompt) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

func (s seedPrompt) Submit(_ context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	sc.Context[flowengine.CtxPromptData] = s.data
	return flowengine.Continue(), nil
}

// TestUserWriteEnrollment runs seed prompt data → dummy page (the execution is
// saved and loaded again, so prompt data goes through JSON) → user_write →
// user_login: the new account is signed in.
func TestUserWriteEnrollment(t *testing.T) {
	ctx := context.Background()
	types := stages.Types()
	types["seed_prompt"] = func(def flowengine.StageDef) (flowengine.Stage, error) {
		data, _ := def.Config["prompt_data"].(map[string]any)
		return seedPrompt{data: data}, nil
	}
	clock := flowengine.NewManualClock(t0)
	st := memory.New(clock)
	eng, err := flowengine.New(flowengine.Options{Store: st, Stages: types, Policies: compileRego, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := applyYAML(eng, `
version: 1
stages:
  - {name: seed, type: seed_prompt, config: {prompt_data: {username: nina, email: nina@example.com, password: pw, is_active: false, attributes.locale: fr}}}
  - {name: welcome, type: dummy}
  - {name: write, type: user_write, config: {create_users_group: members}}
  - {name: login, type: user_login}
flows:
  - slug: enroll
    designation: enrollment
    stages: [{stage: seed, order: 1}, {stage: welcome, order: 2}, {stage: write, order: 3}, {stage: login, order: 4}]
`); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, engine: eng, store: st, clock: clock}
	r := req("")
	res := e.start("enroll", r)
	wantChallenge(t, res, "dummy")
	res = e.answer(res, r)
	if res.Response.Type != flowengine.TypeRedirect || res.NewSession == nil {
		t.Fatalf("got %s (%q), session %v; want a redirect with a new session", res.Response.Type, res.Response.Message, res.NewSession)
	}
	u, err := st.GetUserByUsername(ctx, "nina")
	if err != nil {
		t.Fatal(err)
	}
	if !u.IsActive || !u.InGroup("members") || u.Attributes["locale"] != "fr" || res.NewSession.UserID != u.ID {
		t.Fatalf("user %+v, session user %s", u, res.NewSession.UserID)
	}
	if ok, _ := flowengine.VerifyPassword(u.PasswordHash, "pw"); !ok {
		t.Fatal("password does not verify")
	}
}
