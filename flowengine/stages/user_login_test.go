package stages_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func TestUserLoginConfig(t *testing.T) {
	checkConfigs(t, "user_login", []configCase{
		{"defaults", nil, ""},
		{"go duration", map[string]any{"session_duration": "12h", "remember_me_offset": "720h"}, ""},
		{"authentik durations", map[string]any{"session_duration": "seconds=0", "remember_me_offset": "days=30;hours=1"}, ""},
		{"bad duration", map[string]any{"session_duration": "forever"}, "session_duration"},
		{"bad authentik part", map[string]any{"remember_me_offset": "fortnights=2"}, "remember_me_offset"},
		{"terminate others", map[string]any{"terminate_other_sessions": true}, ""},
	})
}

const reloginYAML = `
version: 1
stages:
  - {name: id, type: identification}
  - {name: pw, type: password}
  - {name: login, type: user_login}
flows:
  - slug: relogin
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: login, order: 3}]
`

// TestUserLoginMergesSession signs alice in again while the request carries a
// session: her own is replaced by one holding both sessions' auth methods and
// the original flow (a step-up), another user's is neither merged nor ended.
func TestUserLoginMergesSession(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		own         bool // the request's session is alice's
		none        bool // the request has no session
		wantMethods []string
		wantFlow    string
	}{
		{"own session is merged and replaced", true, false, []string{flowengine.MethodOTP, flowengine.MethodPassword}, "original-login"},
		{"another user's session is left alone", false, false, []string{flowengine.MethodPassword}, "relogin"},
		{"no session", false, true, []string{flowengine.MethodPassword}, "relogin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			e.alice.PasswordHash = flowengine.TestHash("pw")
			if err := e.store.UpdateUser(ctx, e.alice); err != nil {
				t.Fatal(err)
			}
			eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock,
				Services: flowengine.Services{KeepHashes: true}})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			bp, err := blueprint.Parse("relogin.yaml", []byte(reloginYAML))
			if err != nil {
				t.Fatal(err)
			}
			if err := bp.Apply(ctx, eng); err != nil {
				t.Fatal(err)
			}
			old := &flowengine.Session{ID: flowengine.NewID(), UserID: e.alice.ID, CreatedAt: writeT0, LastSeen: writeT0,
				ExpiresAt: writeT0.Add(30 * 24 * time.Hour), AuthMethods: []string{flowengine.MethodOTP, flowengine.MethodPassword},
				Persistent: true, Flow: "original-login"}
			if !tc.own {
				old.UserID = "someone-else"
			}
			if err := e.store.CreateSession(ctx, old); err != nil {
				t.Fatal(err)
			}
			r := &flowengine.Request{Method: "POST", Scheme: "https", Host: "app.example.com", Path: "/flows/relogin/",
				Query: url.Values{}, ClientIP: "192.0.2.7"}
			if !tc.none {
				r.Session = old
				if tc.own {
					r.User = e.alice
				}
			}
			res, err := eng.Start(ctx, "relogin", r)
			if err != nil {
				t.Fatal(err)
			}
			for _, answer := range []map[string]any{{"uid_field": "alice"}, {"password": "pw"}} {
				if res, err = eng.Answer(ctx, res.ExecutionID, r, answer); err != nil {
					t.Fatal(err)
				}
			}
			s := res.NewSession
			if res.Response.Type != flowengine.TypeRedirect || s == nil {
				t.Fatalf("response %+v, session %v: want a redirect and a new session", res.Response, s)
			}
			if s.ID == old.ID || s.UserID != e.alice.ID {
				t.Fatalf("new session %+v: want a fresh ID for alice", s)
			}
			if !slices.Equal(s.AuthMethods, tc.wantMethods) || s.Flow != tc.wantFlow {
				t.Fatalf("methods %v, flow %q: want %v, %q", s.AuthMethods, s.Flow, tc.wantMethods, tc.wantFlow)
			}
			if tc.own && (!s.Persistent || !s.ExpiresAt.Equal(old.ExpiresAt)) {
				t.Fatalf("persistent %v, expires %v: the step-up must not shorten the session (want true, %v)", s.Persistent, s.ExpiresAt, old.ExpiresAt)
			}
			_, err = e.store.GetSession(ctx, old.ID)
			if gone := errors.Is(err, flowengine.ErrNotFound); gone != tc.own {
				t.Fatalf("old session lookup: %v; want gone only when it was alice's", err)
			}
		})
	}
}
