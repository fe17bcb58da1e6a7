package stages_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func TestUserDeleteConfig(t *testing.T) {
	checkConfigs(t, "user_delete", []configCase{
		{"no config", nil, ""},
		{"empty config", map[string]any{}, ""},
		{"any key is unknown", map[string]any{"delete_devices": true}, `unknown config key "delete_devices"`},
	})
}

const unenrollYAML = `
version: 1
stages:
  - {name: confirm, type: dummy}
  - {name: delete, type: user_delete}
flows:
  - slug: unenroll
    designation: unenrollment
    stages: [{stage: confirm, order: 1}, {stage: delete, order: 2}]
`

// noPolicies compiles the policy-free test flows (no Rego: the policies
// package is not needed here).
func noPolicies(modules map[string]string) (flowengine.PolicyEvaluator, error) {
	if len(modules) > 0 {
		return nil, errors.New("test flows have no policies")
	}
	return nil, nil
}

// TestUserDelete runs dummy → user_delete through the engine, which makes the
// signed-in user the pending user and carries the stage's EndSession.
func TestUserDelete(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		signedIn bool
		want     string // response type
	}{
		{"deletes the signed-in user", true, flowengine.TypeRedirect},
		{"no pending user", false, flowengine.TypeDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			bp, err := blueprint.Parse("unenroll.yaml", []byte(unenrollYAML))
			if err != nil {
				t.Fatal(err)
			}
			if err := bp.Apply(ctx, eng); err != nil {
				t.Fatal(err)
			}
			r := &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Path: "/flows/unenroll/",
				Query: url.Values{}, ClientIP: "192.0.2.7"}
			if tc.signedIn {
				r.User, r.Session = e.alice, e.current
			}
			res, err := eng.Start(ctx, "unenroll", r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.Type != flowengine.TypeChallenge || res.Response.Stage.Type != "dummy" {
				t.Fatalf("start: %+v", res.Response)
			}
			res, err = eng.Answer(ctx, res.ExecutionID, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.Type != tc.want {
				t.Fatalf("response %s (%q), want %s", res.Response.Type, res.Response.Message, tc.want)
			}
			_, err = e.store.GetUser(ctx, e.alice.ID)
			sessions, _ := e.store.ListUserSessions(ctx, e.alice.ID)
			if tc.signedIn {
				if !errors.Is(err, flowengine.ErrNotFound) || len(sessions) != 0 || !res.EndSession {
					t.Fatalf("user %v, %d sessions, end session %v: want gone, 0, true", err, len(sessions), res.EndSession)
				}
			} else if err != nil || len(sessions) != 2 || res.EndSession {
				t.Fatalf("user %v, %d sessions, end session %v: want kept, 2, false", err, len(sessions), res.EndSession)
			}
		})
	}
}

// A pending user who is not the one signed in is deleted without touching the
// caller's session (EndSession would need the executor; it must not be asked).
func TestUserDeleteOtherUser(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	other := &flowengine.Session{ID: "caller", UserID: "someone-else"}
	sc := e.stageContext(nil, e.alice, other)
	if out := submit(t, newStage(t, "user_delete", nil), sc); out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v", out)
	}
	if _, err := e.store.GetUser(ctx, e.alice.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("user still there: %v", err)
	}
	if _, err := e.store.GetSession(ctx, e.current.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("session still there: %v", err)
	}
	if _, ok := sc.Context[flowengine.CtxPendingUser]; ok {
		t.Fatal("pending user not cleared")
	}
}
