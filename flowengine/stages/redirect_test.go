package stages_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func TestRedirectConfig(t *testing.T) {
	checkConfigs(t, "redirect", []configCase{
		{"static local path", map[string]any{"to_url": "/welcome?x=1"}, ""},
		{"static absolute", map[string]any{"mode": "static", "to_url": "https://app.example.com/x"}, ""},
		{"authentik target_static", map[string]any{"mode": "static", "target_static": "https://app.example.com/x"}, ""},
		{"flow", map[string]any{"mode": "flow", "target_flow": "default-enrollment"}, ""},
		{"flow keep_context", map[string]any{"mode": "flow", "target_flow": "other", "keep_context": true}, ""},
		{"no config", nil, "to_url"},
		{"protocol relative", map[string]any{"to_url": "//evil.example.net/"}, "to_url"},
		{"encoded protocol relative", map[string]any{"to_url": "/%2Fevil.example.net/"}, "to_url"},
		{"backslash", map[string]any{"to_url": `/\evil.example.net`}, "to_url"},
		{"javascript", map[string]any{"to_url": "javascript:alert(1)"}, "to_url"},
		{"ftp", map[string]any{"to_url": "ftp://files.example.com/"}, "to_url"},
		{"userinfo", map[string]any{"to_url": "https://user@app.example.com/"}, "to_url"},
		{"no scheme", map[string]any{"to_url": "evil.example.net/x"}, "to_url"},
		{"newline", map[string]any{"to_url": "/a\nb"}, "to_url"},
		{"to_url and target_static differ", map[string]any{"to_url": "/a", "target_static": "/b"}, "target_static"},
		{"target_flow in static mode", map[string]any{"to_url": "/a", "target_flow": "x"}, "target_flow"},
		{"flow without target", map[string]any{"mode": "flow"}, "target_flow"},
		{"flow with path in slug", map[string]any{"mode": "flow", "target_flow": "../admin"}, "target_flow"},
		{"to_url in flow mode", map[string]any{"mode": "flow", "target_flow": "x", "to_url": "/a"}, "to_url"},
		{"bad mode", map[string]any{"mode": "elsewhere"}, "mode"},
		{"unknown key", map[string]any{"url": "/a"}, `unknown config key "url"`},
	})
}

const redirectFlows = `
version: 1
stages:
  - {name: local, type: redirect, config: {to_url: /welcome}}
  - {name: trusted, type: redirect, config: {mode: static, to_url: "https://trusted.example.com/app"}}
  - {name: untrusted, type: redirect, config: {to_url: "https://evil.example.net/"}}
  - {name: into, type: redirect, config: {mode: flow, target_flow: enroll, keep_context: false}}
  - {name: ask, type: dummy}
flows:
  - {slug: local, designation: stage_configuration, stages: [{stage: local, order: 1}]}
  - {slug: trusted, designation: stage_configuration, stages: [{stage: trusted, order: 1}]}
  - {slug: untrusted, designation: stage_configuration, stages: [{stage: untrusted, order: 1}]}
  - {slug: into, designation: stage_configuration, stages: [{stage: into, order: 1}]}
  - {slug: enroll, designation: enrollment, stages: [{stage: ask, order: 1}]}
`

// TestRedirect runs each redirect flow through the engine with the gateway's
// next validator: the stage shows no page, and the flow ends where it says.
func TestRedirect(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock,
		ValidateNext: flowengine.TrustedNext([]string{"trusted.example.com"})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse("r.yaml", []byte(redirectFlows))
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Apply(ctx, eng); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, flow, next, want string
	}{
		{"static local path", "local", "/back", "/welcome"},
		{"static trusted host", "trusted", "", "https://trusted.example.com/app"},
		{"static untrusted host falls back to next", "untrusted", "/back", "/back"},
		{"static untrusted host falls back to default", "untrusted", "", "/"},
		{"flow keeps next", "into", "/back?a=1", "/.flowgate/flows/enroll/?next=%2Fback%3Fa%3D1"},
		{"flow without next", "into", "", "/.flowgate/flows/enroll/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			if tc.next != "" {
				q.Set("next", tc.next)
			}
			r := &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Prefix: "/.flowgate",
				Path: "/.flowgate/flows/" + tc.flow + "/", Query: q, ClientIP: "192.0.2.7"}
			res, err := eng.Start(ctx, tc.flow, r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.Type != flowengine.TypeRedirect || res.Response.To != tc.want {
				t.Fatalf("response %s to %q (%q), want redirect to %q", res.Response.Type, res.Response.To, res.Response.Message, tc.want)
			}
			if tc.flow == "into" {
				// The target is a flow page that starts with the same next.
				u, err := url.Parse(res.Response.To)
				if err != nil {
					t.Fatal(err)
				}
				r2 := &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Prefix: "/.flowgate",
					Path: u.Path, Query: u.Query(), ClientIP: "192.0.2.7"}
				res, err := eng.Start(ctx, "enroll", r2)
				if err != nil {
					t.Fatal(err)
				}
				if res.Response.Type != flowengine.TypeChallenge || res.Next != tc.next {
					t.Fatalf("target flow: %s, next %q; want a challenge, next %q", res.Response.Type, res.Next, tc.next)
				}
			}
		})
	}
}

func TestRedirectInteractive(t *testing.T) {
	s := newStage(t, "redirect", map[string]any{"to_url": "/"})
	if in, ok := s.(flowengine.Interactive); !ok || in.Interactive(nil) {
		t.Fatal("redirect must not count as a step")
	}
}
