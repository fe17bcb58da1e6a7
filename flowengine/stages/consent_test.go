package stages_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func TestConsentConfig(t *testing.T) {
	checkConfigs(t, "consent", []configCase{
		{"defaults", nil, ""},
		{"permanent with permissions", map[string]any{"mode": "permanent", "permissions": []any{"read profile"}}, ""},
		{"expiring authentik duration", map[string]any{"mode": "expiring", "consent_expire_in": "weeks=4"}, ""},
		{"expiring go duration", map[string]any{"mode": "expiring", "consent_expire_in": "720h"}, ""},
		{"expiring without duration", map[string]any{"mode": "expiring"}, "consent_expire_in"},
		{"expiring zero duration", map[string]any{"mode": "expiring", "consent_expire_in": "seconds=0"}, "consent_expire_in"},
		{"bad duration", map[string]any{"mode": "expiring", "consent_expire_in": "soon"}, "consent_expire_in"},
		{"duration without expiring", map[string]any{"consent_expire_in": "1h"}, "consent_expire_in"},
		{"bad mode", map[string]any{"mode": "sometimes"}, "mode"},
		{"permissions not a list", map[string]any{"permissions": "all"}, `"permissions"`},
		{"unknown key", map[string]any{"expires": true}, `unknown config key "expires"`},
	})
}

// consentStep shows the stage's challenge (nil: no page) and, if asked,
// submits answer.
func consentStep(t *testing.T, s flowengine.Stage, sc *flowengine.StageContext, answer flowengine.Answer) (*flowengine.Challenge, flowengine.Outcome) {
	t.Helper()
	ctx := context.Background()
	ch, err := s.Challenge(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if ch == nil {
		answer = flowengine.Answer{}
	}
	out, err := s.Submit(ctx, sc, answer)
	if err != nil {
		t.Fatal(err)
	}
	return ch, out
}

func TestConsent(t *testing.T) {
	agree, refuse := flowengine.Answer{"consent": "true"}, flowengine.Answer{"consent": "false"}
	type step struct {
		advance time.Duration // clock moves before the step
		answer  flowengine.Answer
		asked   bool
		kind    flowengine.OutcomeKind
	}
	cases := []struct {
		name    string
		config  map[string]any
		pending bool
		steps   []step
	}{
		{"always asks", nil, true, []step{
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
		}},
		{"refused", nil, true, []step{{answer: refuse, asked: true, kind: flowengine.OutcomeInvalid}}},
		{"unanswered", nil, true, []step{{answer: flowengine.Answer{}, asked: true, kind: flowengine.OutcomeInvalid}}},
		{"permanent remembered", map[string]any{"mode": "permanent"}, true, []step{
			{answer: refuse, asked: true, kind: flowengine.OutcomeInvalid},
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
			{advance: 24 * 365 * time.Hour, asked: false, kind: flowengine.OutcomeContinue},
		}},
		{"permanent without pending user asks every time", map[string]any{"mode": "permanent"}, false, []step{
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
		}},
		{"expiring", map[string]any{"mode": "expiring", "consent_expire_in": "hours=1"}, true, []step{
			{answer: agree, asked: true, kind: flowengine.OutcomeContinue},
			{advance: 59 * time.Minute, asked: false, kind: flowengine.OutcomeContinue},
			{advance: time.Minute, answer: agree, asked: true, kind: flowengine.OutcomeContinue},
			{advance: 30 * time.Minute, asked: false, kind: flowengine.OutcomeContinue},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			s := newStage(t, "consent", tc.config)
			var pending *flowengine.User
			if tc.pending {
				pending = e.alice
			}
			for i, st := range tc.steps {
				e.clock.Advance(st.advance)
				sc := e.stageContext(nil, pending, nil)
				ch, out := consentStep(t, s, sc, st.answer)
				if (ch != nil) != st.asked || out.Kind != st.kind {
					t.Fatalf("step %d: challenge %+v, outcome %+v; want asked %v, kind %v", i, ch, out, st.asked, st.kind)
				}
				if out.Kind == flowengine.OutcomeInvalid && len(out.Errors["consent"]) == 0 {
					t.Fatalf("step %d: no field error: %+v", i, out)
				}
			}
		})
	}
}

func TestConsentChallenge(t *testing.T) {
	e := newStageEnv(t)
	sc := e.stageContext(nil, e.alice, nil)
	s := newStage(t, "consent", map[string]any{"permissions": []any{"read your profile", "see your groups"}})
	ch, err := s.Challenge(context.Background(), sc)
	if err != nil || ch == nil {
		t.Fatalf("challenge %v, %v", ch, err)
	}
	f := ch.Fields
	if len(f) != 1 || f[0].Key != "consent" || f[0].Type != flowengine.FieldCheckbox || !f[0].Required || f[0].Label != "I agree" {
		t.Fatalf("fields %+v", f)
	}
	perms, _ := ch.Data["permissions"].([]string)
	if len(perms) != 2 || perms[0] != "read your profile" {
		t.Fatalf("data %+v", ch.Data)
	}
	ch, _ = newStage(t, "consent", nil).Challenge(context.Background(), sc)
	if perms, ok := ch.Data["permissions"].([]string); !ok || perms == nil || len(perms) != 0 {
		t.Fatalf("no permissions: data %#v, want an empty list", ch.Data)
	}
}

// A remembered consent is per flow and stage, and keeps the rest of the user.
func TestConsentRememberedPerStage(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	s := newStage(t, "consent", map[string]any{"mode": "permanent"})
	sc := e.stageContext(nil, e.alice, nil)
	if _, out := consentStep(t, s, sc, flowengine.Answer{"consent": "on"}); out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v", out)
	}
	u, err := e.store.GetUser(ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := u.Attributes["flowgate.consent.enroll.write"].(string); got != writeT0.Format(time.RFC3339) {
		t.Fatalf("attributes %+v", u.Attributes)
	}
	if !u.IsActive || len(u.Groups) != 1 || u.PasswordHash != e.alice.PasswordHash {
		t.Fatalf("user changed: %+v", u)
	}
	other := e.stageContext(nil, e.alice, nil)
	other.StageName = "other"
	if ch, _ := consentStep(t, s, other, flowengine.Answer{"consent": "false"}); ch == nil {
		t.Fatal("another stage's consent was taken as this one's")
	}
}

func TestConsentInteractive(t *testing.T) {
	if in, ok := newStage(t, "consent", nil).(flowengine.Interactive); !ok || !in.Interactive(nil) {
		t.Fatal("consent must count as a step")
	}
}
