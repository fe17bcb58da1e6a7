package flowengine_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

const keepContextYAML = `
version: 1
stages:
  - name: ask
    type: prompt
    config:
      fields:
        - {field_key: username, type: username, required: true, order: 1}
        - {field_key: email, type: email, order: 2}
        - {field_key: password, type: password, required: true, order: 3}
  - {name: into-keep, type: redirect, config: {mode: flow, target_flow: finish, keep_context: true}}
  - {name: into-clean, type: redirect, config: {mode: flow, target_flow: finish, keep_context: false}}
  - {name: write, type: user_write}
  - {name: login, type: user_login}
flows:
  - {slug: a-keep, designation: enrollment, stages: [{stage: ask, order: 1}, {stage: into-keep, order: 2}]}
  - {slug: a-clean, designation: enrollment, stages: [{stage: ask, order: 1}, {stage: into-clean, order: 2}]}
  - {slug: finish, designation: enrollment, stages: [{stage: write, order: 1}, {stage: login, order: 2}]}
  - {slug: other, designation: enrollment, stages: [{stage: write, order: 1}, {stage: login, order: 2}]}
`

// runA answers flow slug's prompt and returns the request that starts the
// target flow, as the browser follows the redirect.
func runA(t *testing.T, e *env, slug, username string) *flowengine.Request {
	t.Helper()
	r := req("next=/back")
	res := e.start(slug, r)
	wantChallenge(t, res, "prompt")
	res = e.answer(res, r, "username", username, "email", username+"@example.com", "password", "correct horse battery staple 7!")
	if res.Response.Type != flowengine.TypeRedirect {
		t.Fatalf("flow %s: %s (%q), want a redirect", slug, res.Response.Type, res.Response.Message)
	}
	u, err := url.Parse(res.Response.To)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(u.Path, "/flows/finish/") || u.Query().Get("next") != "/back" {
		t.Fatalf("redirect to %q, want the finish flow with next", res.Response.To)
	}
	r2 := req("")
	r2.Path, r2.Query = u.Path, u.Query()
	return r2
}

// TestRedirectKeepContext: flow A's prompt answers reach flow B's user_write
// through a redirect with keep_context, once; without keep_context flow B
// starts clean.
func TestRedirectKeepContext(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memoryStore, keepContextYAML)

	r := runA(t, e, "a-keep", "nina")
	key := r.Query.Get(flowengine.CarryParam)
	if len(key) != 43 {
		t.Fatalf("carry key %q, want 256 random bits", key)
	}
	res := e.start("finish", r)
	if res.Response.Type != flowengine.TypeRedirect || res.NewSession == nil || res.Next != "/back" {
		t.Fatalf("finish: %s (%q), session %v, next %q; want a signed-in redirect to /back", res.Response.Type, res.Response.Message, res.NewSession, res.Next)
	}
	u, err := e.store.GetUserByUsername(ctx, "nina")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "nina@example.com" || res.NewSession.UserID != u.ID {
		t.Fatalf("user %+v, session user %s", u, res.NewSession.UserID)
	}

	// The key is single use: presenting it again starts clean (user_write has
	// no prompt data, so nothing is written and no one is signed in).
	res, err = e.engine.Start(ctx, "finish", r)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewSession != nil {
		t.Fatal("a reused carry key signed someone in")
	}

	// Without keep_context there is no key and flow B starts clean.
	r = runA(t, e, "a-clean", "otto")
	if r.Query.Has(flowengine.CarryParam) {
		t.Fatalf("keep_context false carried a context: %v", r.Query)
	}
	res, err = e.engine.Start(ctx, "finish", r)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewSession != nil {
		t.Fatal("a clean start signed someone in")
	}
	if _, err := e.store.GetUserByUsername(ctx, "otto"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a clean start wrote the user: %v", err)
	}
}

// TestRedirectKeepContextBound: a carried context is taken only by its target
// flow, and never by a request signed in as another user than the one it acts
// on.
func TestRedirectKeepContextBound(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memoryStore, keepContextYAML)

	// Another flow cannot take it (and the attempt uses it up).
	r := runA(t, e, "a-keep", "nina")
	if res := e.start("other", r); res.NewSession != nil {
		t.Fatal("another flow took the carried context")
	}
	if res := e.start("finish", r); res.NewSession != nil {
		t.Fatal("the key was usable after another flow presented it")
	}

	// A context acting on one user is dropped for a session of another.
	mallory := e.addUser("mallory", "pw")
	victim := e.addUser("victim", "pw")
	r = runA(t, e, "a-keep", "nina2")
	key := r.Query.Get(flowengine.CarryParam)
	raw, err := e.store.GetExecution(ctx, "fgctx:"+key)
	if err != nil {
		t.Fatal(err)
	}
	// Make the stored context act on victim, as a flow with identification would.
	doctored := strings.Replace(string(raw), `"context":{`, `"context":{"pending_user":"`+victim.ID+`",`, 1)
	if err := e.store.PutExecution(ctx, "fgctx:"+key, []byte(doctored), flowengine.CarryTTL); err != nil {
		t.Fatal(err)
	}
	r.User = mallory
	res := e.start("finish", r)
	if res.NewSession != nil && res.NewSession.UserID == victim.ID {
		t.Fatal("a session of another user took over the carried pending user")
	}
	if _, err := e.store.GetUserByUsername(ctx, "nina2"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("another user's session used the carried prompt data: %v", err)
	}
}
