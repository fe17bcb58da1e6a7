package flowengine_test

import (
	"os"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

// What the executor tells the pages: steps the visitor sees, refused answers,
// the next target and the default target.

const pagesFlows = `
version: 1
stages:
  - {name: pg-id, type: identification}
  - {name: pg-pw, type: password, config: {failed_attempts_before_cancel: 2}}
  - {name: pg-note, type: dummy}
  - {name: pg-deny, type: deny}
  - {name: pg-login, type: user_login}
  - {name: pg-remember, type: user_login, config: {remember_me_offset: 720h}}
  - {name: pg-logout, type: user_logout}
flows:
  - slug: pg-auth
    designation: authentication
    stages:
      - {stage: pg-id, order: 10}
      - {stage: pg-pw, order: 20}
      - {stage: pg-deny, order: 30, policies: [{group: nobody-is-in-this-group}]}
      - {stage: pg-note, order: 40}
      - {stage: pg-login, order: 50}
  - slug: pg-no-password
    designation: authentication
    stages:
      - {stage: pg-id, order: 10}
      - {stage: pg-remember, order: 20}
  - slug: pg-out
    designation: invalidation
    stages:
      - {stage: pg-logout, order: 10}
`

type stepCase struct {
	stage       string
	step, steps int
}

func wantStep(t *testing.T, res *flowengine.Result, want stepCase) {
	t.Helper()
	wantChallenge(t, res, want.stage)
	if s := res.Response.Stage; s.Step != want.step || s.Steps != want.steps {
		t.Fatalf("%s: step %d of %d, want %d of %d", want.stage, s.Step, s.Steps, want.step, want.steps)
	}
}

// Stages that need no input (deny, user_login without remember-me) are not
// steps; a dummy page is.
func TestStepsCountOnlyPages(t *testing.T) {
	e := newEnv(t, memoryStore, pagesFlows)
	e.addUser("sam", "pw")
	r := req("")
	res := e.start("pg-auth", r)
	wantStep(t, res, stepCase{"identification", 1, 3})
	res = e.answer(res, r, "uid_field", "sam")
	wantStep(t, res, stepCase{"password", 2, 3})
	// A refused answer is the same step again.
	res = e.answer(res, r, "password", "wrong")
	wantStep(t, res, stepCase{"password", 2, 3})
	res = e.answer(res, r, "password", "pw")
	wantStep(t, res, stepCase{"dummy", 3, 3})
	if res = e.answer(res, r); res.NewSession == nil {
		t.Fatalf("no login: %+v", res.Response)
	}

	// Without a password page, user_login asks "Stay signed in" itself and counts.
	res = e.start("pg-no-password", r)
	wantStep(t, res, stepCase{"identification", 1, 2})
	res = e.answer(res, r, "uid_field", "sam")
	wantStep(t, res, stepCase{"user_login", 2, 2})
	if res = e.answer(res, r, "remember_me", "true"); res.NewSession == nil || !res.NewSession.Persistent {
		t.Fatalf("remember me on user_login's own page: %+v", res.NewSession)
	}
}

// After a cancelled attempt the flow starts over: the first page shows why (as
// a refusal) but none of the old stage's field errors — even for a client that
// never fetched the page in between (the JSON API).
func TestRestartDropsFieldErrors(t *testing.T) {
	e := newEnv(t, memoryStore, pagesFlows)
	e.addUser("sam", "pw")
	r := req("next=/after")
	res := e.answer(e.start("pg-auth", r), r, "uid_field", "sam")
	res = e.answer(res, r, "password", "wrong")
	if len(res.Response.Errors["password"]) != 1 || res.Response.Refusals != 0 {
		t.Fatalf("first wrong password: %+v", res.Response)
	}
	res = e.answer(res, r, "password", "wrong") // the second cancels
	wantStep(t, res, stepCase{"identification", 1, 3})
	if len(res.Response.Errors) != 0 {
		t.Fatalf("the password's errors came along to identification: %v", res.Response.Errors)
	}
	if m := res.Response.Messages; len(m) != 1 || !strings.Contains(m[0], "Too many failed attempts") || res.Response.Refusals != 1 {
		t.Fatalf("restart message: %v (refusals %d)", m, res.Response.Refusals)
	}
	if res.Next != "/after" {
		t.Fatalf("Result.Next %q, want /after", res.Next)
	}
	// Kept for the page an HTML form redirects to, then gone.
	again, err := e.engine.Resume(t.Context(), res.ExecutionID, r)
	if err != nil || len(again.Response.Messages) != 1 || again.Response.Refusals != 1 || len(again.Response.Errors) != 0 {
		t.Fatalf("page after the redirect: %v %+v", err, again.Response)
	}
	if again, err = e.engine.Resume(t.Context(), res.ExecutionID, r); err != nil || len(again.Response.Messages) != 0 {
		t.Fatalf("page shown again: %v %v", err, again.Response.Messages)
	}
	// A wrong then a right password: the next stage shows nothing of the error.
	res = e.answer(again, r, "uid_field", "sam")
	res = e.answer(res, r, "password", "wrong")
	res = e.answer(res, r, "password", "pw")
	wantChallenge(t, res, "dummy")
	if len(res.Response.Errors) != 0 || len(res.Response.Messages) != 0 {
		t.Fatalf("stale errors on the next stage: %v %v", res.Response.Errors, res.Response.Messages)
	}
}

// A locked attempt is a refusal (an error on the page), word for word the same
// for a known and an unknown name.
func TestLockIsARefusal(t *testing.T) {
	e, _ := regulatedEnv(t)
	e.addUser("kim", "right")
	locked := map[string]flowengine.Response{}
	for _, uid := range []string{"kim", "nobody-here"} {
		for range 5 {
			e.answer(identified(e, uid), req(""), "password", "x")
		}
		res := e.answer(identified(e, uid), req(""), "password", "right")
		if res.NewSession != nil {
			t.Fatalf("%s: signed in while locked", uid)
		}
		locked[uid] = res.Response
	}
	k, u := locked["kim"], locked["nobody-here"]
	if k.Refusals != 1 || len(k.Messages) != 1 || k.Messages[0] != lockMessage || len(k.Errors) != 0 {
		t.Fatalf("known name: %+v", k)
	}
	if u.Refusals != k.Refusals || strings.Join(u.Messages, "|") != strings.Join(k.Messages, "|") || len(u.Errors) != len(k.Errors) {
		t.Fatalf("unknown name answered differently:\n%+v\n%+v", k, u)
	}
}

// A sign-out without redirect or next ends on the default target, and the
// result says so (the gateway shows "You have been signed out" there).
func TestDefaultTargetReported(t *testing.T) {
	e := newEnv(t, memoryStore, pagesFlows)
	if res := e.start("pg-out", req("")); res.Response.Type != flowengine.TypeRedirect || !res.DefaultTarget {
		t.Fatalf("without next: %+v default %v", res.Response, res.DefaultTarget)
	}
	res := e.start("pg-out", req("next=/bye"))
	if res.Response.To != "/bye" || res.DefaultTarget || res.Next != "/bye" {
		t.Fatalf("with next: %+v default %v next %q", res.Response, res.DefaultTarget, res.Next)
	}
	if res := e.start("pg-out", req("next=//evil.example")); !res.DefaultTarget || res.Next != "" {
		t.Fatalf("with a refused next: default %v next %q", res.DefaultTarget, res.Next)
	}
}

// readmeBlueprint is the first YAML block of README.md's Blueprints section.
func readmeBlueprint(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Blueprints\n")
	if !ok {
		t.Fatal("README.md has no Blueprints section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("README.md's Blueprints section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// The README's example blueprint does what it says: staff sign in, others are
// refused after their password.
func TestReadmeBlueprintExample(t *testing.T) {
	e := newEnv(t, memoryStore, readmeBlueprint(t))
	e.addUser("sam", "pw-sam", "staff")
	e.addUser("nora", "pw-nora")
	r := req("next=/app")
	res := e.answer(e.start("staff-login", r), r, "uid_field", "sam")
	res = e.answer(res, r, "password", "pw-sam")
	if res.Response.Type != flowengine.TypeRedirect || res.Response.To != "/app" || res.NewSession == nil {
		t.Fatalf("staff member: %+v", res.Response)
	}
	res = e.answer(e.start("staff-login", r), r, "uid_field", "nora")
	res = e.answer(res, r, "password", "pw-nora")
	if res.Response.Type != flowengine.TypeDenied || res.NewSession != nil || !strings.Contains(res.Response.Message, "staff") {
		t.Fatalf("non-staff user: %+v", res.Response)
	}
	if _, err := e.store.GetUserByUsername(t.Context(), "demo"); err != nil {
		t.Fatalf("the example's seed user: %v", err)
	}
}
