package flowengine_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

func TestReputationScores(t *testing.T) {
	ctx := context.Background()
	reg := flowengine.NewRegulator(memory.New(flowengine.NewManualClock(t0)))
	key := flowengine.RegulationKey(nil, "Vic")
	score := func() flowengine.Reputation {
		t.Helper()
		rep, err := reg.Reputation(ctx, key, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := score(); rep != (flowengine.Reputation{}) {
		t.Fatalf("clean record scores %+v", rep)
	}
	for i := 0; i < 3; i++ {
		if _, err := reg.Reserve(ctx, key, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if err := reg.Failed(ctx, key, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if rep := score(); rep.IP != -3 || rep.Username != -3 {
		t.Fatalf("after 3 failures: %+v", rep)
	}
	// A success raises the account back to 0; the IP keeps its failures.
	if err := reg.Succeeded(ctx, key); err != nil {
		t.Fatal(err)
	}
	if rep := score(); rep.IP != -3 || rep.Username != 0 {
		t.Fatalf("after a success: %+v", rep)
	}
	// A lock clears the failure count; the locked account still scores low.
	for i := 0; i < 5; i++ {
		reg.Reserve(ctx, key, "192.0.2.2")
		reg.Failed(ctx, key, "192.0.2.2")
	}
	if rep := score(); rep.Username != -flowengine.DefaultUserFailures {
		t.Fatalf("locked account: %+v", rep)
	}
	// Nothing named, nothing read.
	if rep, err := reg.Reputation(ctx, "", ""); err != nil || rep != (flowengine.Reputation{}) {
		t.Fatalf("empty: %+v, %v", rep, err)
	}
}

type fixedReputation struct {
	rep       flowengine.Reputation
	err       error
	key, ip   string
	callCount int
}

func (f *fixedReputation) Reputation(_ context.Context, key, ip string) (flowengine.Reputation, error) {
	f.key, f.ip = key, ip
	f.callCount++
	return f.rep, f.err
}

// input.reputation reaches the policies that read it, from the request's
// source, keyed by the user; a policy that does not read it costs no counter
// reads; unreadable counters leave it undefined rather than clean.
func TestReputationPolicyInput(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t), `
version: 1
policies:
  - name: rep-check
    rego: |
      package flowgate.rep_check
      import rego.v1
      allow if {
        input.reputation.ip == -2
        input.reputation.username == -4
      }
  - name: rep-clean
    rego: |
      package flowgate.rep_clean
      import rego.v1
      allow if {
        input.reputation.ip == 0
        input.reputation.username == 0
      }
  - name: rep-missing
    rego: |
      package flowgate.rep_missing
      import rego.v1
      allow if not input.reputation
  - name: plain
    rego: |
      package flowgate.plain
      import rego.v1
      allow := true
`)
	ctx := context.Background()
	r := req("")
	if d := e.engine.Authorize(ctx, "rep-clean", r); !d.Passed {
		t.Fatalf("without a source the scores are 0: %+v", d)
	}
	src := &fixedReputation{rep: flowengine.Reputation{IP: -2, Username: -4}}
	r.Reputation = src
	u := &flowengine.User{ID: "u1", Username: "vic", IsActive: true}
	r.User = u
	if d := e.engine.Authorize(ctx, "rep-check", r); !d.Passed {
		t.Fatalf("with a source: %+v", d)
	}
	if src.key != flowengine.RegulationKey(u, "") || src.ip != r.ClientIP {
		t.Fatalf("read %q %q", src.key, src.ip)
	}
	calls := src.callCount
	if d := e.engine.Authorize(ctx, "plain", r); !d.Passed || src.callCount != calls {
		t.Fatalf("a policy without input.reputation read the counters (%d reads)", src.callCount-calls)
	}
	src.err = errors.New("store down")
	if d := e.engine.Authorize(ctx, "rep-missing", r); !d.Passed {
		t.Fatalf("on error input.reputation must be undefined: %+v", d)
	}
	if d := e.engine.Authorize(ctx, "rep-clean", r); d.Passed {
		t.Fatal("on error a policy saw a clean reputation")
	}
}

// TestConditionalCaptcha runs authentik's "login with conditional captcha"
// example: the captcha appears only once the client has failed 5 logins.
func TestConditionalCaptcha(t *testing.T) {
	ctx := context.Background()
	clock := flowengine.NewManualClock(t0)
	st := memory.New(clock)
	reg := flowengine.NewRegulator(st)
	e, err := flowengine.New(flowengine.Options{Store: st, Stages: stages.Types(), Policies: compileRego, Clock: clock,
		Services: flowengine.Services{Regulator: reg}})
	if err != nil {
		t.Fatal(err)
	}
	file := "blueprint/authentik/testdata/flows-login-conditional-captcha.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Apply(ctx, e); err != nil {
		t.Fatal(err)
	}
	env := &env{t: t, engine: e, store: st, clock: clock}
	env.addUser("vic", "right")
	login := func(user, pw string) *flowengine.Result {
		r := req("")
		r.ClientIP = "203.0.113.5"
		r.Reputation = reg
		res := env.start("default-authentication-flow", r)
		res = env.answer(res, r, "uid_field", user)
		return env.answer(res, r, "password", pw)
	}
	if res := login("vic", "right"); res.NewSession == nil {
		t.Fatalf("a clean client got %s %q", res.Response.Type, res.Response.Stage.Type)
	}
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		login(u, "wrong")
	}
	res := login("vic", "right")
	wantChallenge(t, res, "captcha")
	if res.NewSession != nil {
		t.Fatal("signed in without the captcha")
	}
}
