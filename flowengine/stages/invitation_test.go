package stages_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

func TestInvitationConfig(t *testing.T) {
	checkConfigs(t, "invitation", []configCase{
		{"no config", nil, ""},
		{"continue", map[string]any{"continue_flow_without_invitation": true}, ""},
		{"unknown key", map[string]any{"token": "x"}, `unknown config key "token"`},
	})
}

func TestInvitationStage(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type setup struct {
		flow, query, planToken string
		expired, continueFlag  bool
		singleUse              bool
	}
	cases := []struct {
		name string
		setup
		wantKind flowengine.OutcomeKind
		wantData map[string]any // prompt_data after, when accepted
	}{
		{name: "valid invitation pre-fills prompt data", setup: setup{flow: "enroll", query: "own"},
			wantKind: flowengine.OutcomeContinue, wantData: map[string]any{"email": "bob@example.com", "attributes.team": "red", "name": "Bob"}},
		{name: "token from the plan context", setup: setup{flow: "enroll", planToken: "own"},
			wantKind: flowengine.OutcomeContinue, wantData: map[string]any{"email": "bob@example.com", "attributes.team": "red", "name": "Bob"}},
		{name: "invitation for another flow", setup: setup{flow: "other", query: "own"}, wantKind: flowengine.OutcomeDeny},
		{name: "expired invitation", setup: setup{flow: "enroll", query: "own", expired: true}, wantKind: flowengine.OutcomeDeny},
		{name: "unknown token", setup: setup{flow: "enroll", query: "nope"}, wantKind: flowengine.OutcomeDeny},
		{name: "no token", setup: setup{flow: "enroll"}, wantKind: flowengine.OutcomeDeny},
		{name: "no token, continue_flow_without_invitation", setup: setup{flow: "enroll", continueFlag: true},
			wantKind: flowengine.OutcomeContinue, wantData: map[string]any{"name": "Bob"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := flowengine.NewManualClock(t0)
			st := memory.New(clock)
			inv := &flowengine.Invitation{ID: flowengine.NewID(), Flow: "enroll", ExpiresAt: t0.Add(time.Hour),
				Email: "bob@example.com", FixedData: map[string]any{"attributes.team": "red"}, CreatedAt: t0}
			if err := flowengine.CreateInvitation(ctx, st, inv, t0); err != nil {
				t.Fatal(err)
			}
			if tc.expired {
				clock.Advance(2 * time.Hour)
			}
			token := func(s string) string {
				if s == "own" {
					return inv.ID
				}
				return s
			}
			stage, err := stages.Types()["invitation"](flowengine.StageDef{Name: "inv", Type: "invitation",
				Config: map[string]any{"continue_flow_without_invitation": tc.continueFlag}})
			if err != nil {
				t.Fatal(err)
			}
			planCtx := map[string]any{flowengine.CtxPromptData: map[string]any{"name": "Bob"}}
			if tc.planToken != "" {
				planCtx[stages.CtxInvitationToken] = token(tc.planToken)
			}
			q := url.Values{}
			if tc.query != "" {
				q.Set(stages.InvitationQuery, token(tc.query))
			}
			sc := &flowengine.StageContext{Flow: &flowengine.Flow{Slug: tc.flow}, StageName: "inv", StageType: "invitation",
				Request: &flowengine.Request{Method: "GET", Path: "/flows/" + tc.flow + "/", Query: q},
				Context: planCtx, State: map[string]any{}, Store: st, Clock: clock}
			out, err := stage.Submit(ctx, sc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if out.Kind != tc.wantKind {
				t.Fatalf("outcome %+v, want kind %d", out, tc.wantKind)
			}
			if out.Kind == flowengine.OutcomeDeny && (len(out.Messages) != 1 || out.Messages[0] != "An invitation is required.") {
				t.Fatalf("deny messages %q", out.Messages)
			}
			if tc.wantData == nil {
				return
			}
			data := sc.Context[flowengine.CtxPromptData].(map[string]any)
			if len(data) != len(tc.wantData) {
				t.Fatalf("prompt_data %v, want %v", data, tc.wantData)
			}
			for k, v := range tc.wantData {
				if data[k] != v {
					t.Fatalf("prompt_data %v, want %v", data, tc.wantData)
				}
			}
			if id, _ := sc.Context[stages.CtxInvitation].(string); tc.wantData["email"] != nil && id != inv.ID {
				t.Fatalf("context invitation %q, want %q", id, inv.ID)
			}
			if _, ok := sc.Context[stages.CtxInvitationToken]; ok {
				t.Fatal("the token stayed in the plan context")
			}
		})
	}
}

// A single-use invitation starts one flow; a multi-use one counts its uses.
// Revoking deletes it and takes it off the list.
func TestInvitationSingleUseAndList(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := flowengine.NewManualClock(t0)
	st := memory.New(clock)
	stage, err := stages.Types()["invitation"](flowengine.StageDef{Name: "inv", Type: "invitation"})
	if err != nil {
		t.Fatal(err)
	}
	once := &flowengine.Invitation{ID: flowengine.NewID(), Flow: "enroll", ExpiresAt: t0.Add(time.Hour), SingleUse: true, CreatedAt: t0}
	many := &flowengine.Invitation{ID: flowengine.NewID(), Flow: "enroll", ExpiresAt: t0.Add(2 * time.Hour), CreatedAt: t0.Add(time.Second)}
	for _, inv := range []*flowengine.Invitation{once, many} {
		if err := flowengine.CreateInvitation(ctx, st, inv, t0); err != nil {
			t.Fatal(err)
		}
	}
	use := func(id string) flowengine.OutcomeKind {
		sc := &flowengine.StageContext{Flow: &flowengine.Flow{Slug: "enroll"},
			Request: &flowengine.Request{Query: url.Values{stages.InvitationQuery: {id}}},
			Context: map[string]any{}, State: map[string]any{}, Store: st, Clock: clock}
		out, err := stage.Submit(ctx, sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Kind
	}
	if use(once.ID) != flowengine.OutcomeContinue || use(once.ID) != flowengine.OutcomeDeny {
		t.Fatal("single-use invitation: want accepted once, then denied")
	}
	for range 2 {
		if use(many.ID) != flowengine.OutcomeContinue {
			t.Fatal("multi-use invitation denied")
		}
	}
	list, err := flowengine.ListInvitations(ctx, st, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != many.ID || list[0].Uses != 2 {
		t.Fatalf("list after use: %+v", list)
	}
	if err := flowengine.DeleteInvitation(ctx, st, many.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := flowengine.DeleteInvitation(ctx, st, many.ID, clock.Now()); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if use(many.ID) != flowengine.OutcomeDeny {
		t.Fatal("revoked invitation accepted")
	}
	if list, _ := flowengine.ListInvitations(ctx, st, clock.Now()); len(list) != 0 {
		t.Fatalf("list after revoke: %+v", list)
	}
}
