package flowengine_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
)

func exampleBlueprint(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../examples/blueprints/default-flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The default flows from the example blueprint, end to end, on both stores.
func TestDefaultFlowsEndToEnd(t *testing.T) {
	for _, kind := range []storeKind{memoryStore, boltStore} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, kind, exampleBlueprint(t))
			alice := e.addUser("alice", "correct horse")
			ctx := context.Background()

			flow, err := e.engine.FindFlow(ctx, flowengine.DesignationAuthentication, req(""))
			if err != nil || flow.Slug != "default-authentication" {
				t.Fatalf("FindFlow: %v %v", flow, err)
			}
			r := req("next=/dashboard?tab=2")
			res := e.start(flow.Slug, r)
			wantChallenge(t, res, "identification")
			// user_login shows no page, so it is not a step.
			if res.Response.Stage.Step != 1 || res.Response.Stage.Steps != 2 || res.Response.Fields[0].Key != "uid_field" {
				t.Fatalf("identification challenge: %+v", res.Response)
			}
			res = e.answer(res, r, "uid_field", "ALICE@example.com")
			wantChallenge(t, res, "password")
			res = e.answer(res, r, "password", "correct horse")
			if res.Response.Type != flowengine.TypeRedirect || res.Response.To != "/dashboard?tab=2" {
				t.Fatalf("after password: %+v", res.Response)
			}
			if res.NewSession == nil || res.NewSession.UserID != alice.ID || res.ExecutionID != "" {
				t.Fatalf("login result: %+v", res)
			}
			sess, err := e.store.GetSession(ctx, res.NewSession.ID)
			if err != nil || sess.ClientIP != "192.0.2.7" || sess.UserAgent != "test-agent" || sess.AuthMethods[0] != flowengine.MethodPassword {
				t.Fatalf("stored session %+v %v", sess, err)
			}

			// Sign out through the invalidation flow.
			out := req("")
			out.Session, out.User = sess, alice
			inv, err := e.engine.FindFlow(ctx, flowengine.DesignationInvalidation, out)
			if err != nil {
				t.Fatal(err)
			}
			res = e.start(inv.Slug, out)
			if res.Response.Type != flowengine.TypeRedirect || !res.EndSession || res.Response.To != "/" {
				t.Fatalf("logout: %+v", res)
			}
			if _, err := e.store.GetSession(ctx, sess.ID); !errors.Is(err, flowengine.ErrNotFound) {
				t.Fatalf("session survived logout: %v", err)
			}
		})
	}
}

func TestWrongPasswordAndCancel(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	e.addUser("bob", "right")
	r := req("")
	res := e.start("default-authentication", r)
	res = e.answer(res, r, "uid_field", "bob")
	for i := 1; i < 5; i++ {
		res = e.answer(res, r, "password", "wrong")
		wantChallenge(t, res, "password")
		if got := res.Response.Errors["password"]; len(got) != 1 || got[0] != "Invalid password." {
			t.Fatalf("attempt %d errors: %v", i, res.Response.Errors)
		}
	}
	// The fifth failure (default failed_attempts_before_cancel) starts the flow over.
	res = e.answer(res, r, "password", "wrong")
	wantChallenge(t, res, "identification")
	if len(res.Response.Messages) == 0 || !strings.Contains(res.Response.Messages[0], "Too many failed attempts") {
		t.Fatalf("cancel message missing: %v", res.Response.Messages)
	}
	res = e.answer(res, r, "uid_field", "bob")
	res = e.answer(res, r, "password", "right")
	if res.NewSession == nil {
		t.Fatal("login after a cancelled attempt failed")
	}
}

func TestUnknownUserLooksLikeKnown(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	r := req("")
	res := e.start("default-authentication", r)
	res = e.answer(res, r, "uid_field", "nobody")
	wantChallenge(t, res, "password") // pretend_user_exists (default true)
	res = e.answer(res, r, "password", "anything")
	wantChallenge(t, res, "password")
	if res.Response.Errors["password"][0] != "Invalid password." {
		t.Fatalf("unknown user error differs from a known user's: %v", res.Response.Errors)
	}
}

func TestPretendUserExistsOff(t *testing.T) {
	e := newEnv(t, memoryStore, `
version: 1
stages:
  - {name: id, type: identification, config: {user_fields: [email], pretend_user_exists: false}}
  - {name: pw, type: password}
  - {name: login, type: user_login}
flows:
  - slug: auth
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: login, order: 3}]
`)
	e.addUser("carol", "pw")
	r := req("")
	res := e.start("auth", r)
	if res.Response.Fields[0].Label != "Email" {
		t.Fatalf("label for email-only: %q", res.Response.Fields[0].Label)
	}
	res = e.answer(res, r, "uid_field", "carol") // a username, but only email is allowed
	wantChallenge(t, res, "identification")
	if res.Response.Errors["uid_field"][0] != "Failed to authenticate." {
		t.Fatalf("errors: %v", res.Response.Errors)
	}
	res = e.answer(res, r, "uid_field", "CAROL@example.com")
	wantChallenge(t, res, "password")
}

func TestBcryptAndArgonHashes(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	ctx := context.Background()
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ name, hash string }{
		// bcrypt as `caddy hash-password` and `htpasswd -B` write it, plain and
		// base64-wrapped as older Caddyfiles carry it.
		{"bc", string(bc)},
		{"bc2y", "$2y$" + string(bc[4:])},
		{"bc64", base64.StdEncoding.EncodeToString(bc)},
		{"argon", mustHash(t, "secret")},
	} {
		u := &flowengine.User{ID: flowengine.NewID(), Username: h.name, IsActive: true, PasswordHash: h.hash}
		if err := e.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		r := req("")
		res := e.start("default-authentication", r)
		res = e.answer(res, r, "uid_field", h.name)
		bad := e.answer(res, r, "password", "Secret")
		if bad.NewSession != nil {
			t.Fatalf("%s: wrong password accepted", h.name)
		}
		if ok := e.answer(bad, r, "password", "secret"); ok.NewSession == nil {
			t.Fatalf("%s: right password refused: %+v", h.name, ok.Response)
		}
	}
}

func mustHash(t *testing.T, pw string) string {
	h, err := flowengine.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestInactiveUserCannotLogIn(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	u := e.addUser("dora", "pw")
	u.IsActive = false
	e.store.UpdateUser(context.Background(), u)
	r := req("")
	res := e.start("default-authentication", r)
	res = e.answer(res, r, "uid_field", "dora")
	res = e.answer(res, r, "password", "pw")
	if res.NewSession != nil {
		t.Fatal("inactive user logged in")
	}
}

func TestAnswerChecks(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	r := req("")
	res := e.start("default-authentication", r)
	ctx := context.Background()
	for name, a := range map[string]map[string]any{
		"extra key":  {"uid_field": "x", "is_admin": "true"},
		"wrong type": {"uid_field": 42.0},
		"nested":     {"uid_field": map[string]any{"a": "b"}},
		"too long":   {"uid_field": strings.Repeat("x", 9000)},
	} {
		if _, err := e.engine.Answer(ctx, res.ExecutionID, r, a); !errors.Is(err, flowengine.ErrInvalidAnswer) {
			t.Errorf("%s: %v, want ErrInvalidAnswer", name, err)
		}
	}
	// Nothing changed: the same execution still asks for identification.
	again, err := e.engine.Resume(ctx, res.ExecutionID, r)
	if err != nil {
		t.Fatal(err)
	}
	wantChallenge(t, again, "identification")
	missing, err := e.engine.Answer(ctx, res.ExecutionID, r, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if missing.Response.Errors["uid_field"][0] != "This field is required." {
		t.Fatalf("missing key: %+v", missing.Response)
	}
	if _, err := e.engine.Answer(ctx, "no-such-execution", r, map[string]any{}); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("unknown execution: %v", err)
	}
}

func TestExecutionExpires(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	r := req("")
	res := e.start("default-authentication", r)
	e.clock.Advance(flowengine.DefaultExecutionTTL + time.Second)
	if _, err := e.engine.Answer(context.Background(), res.ExecutionID, r, map[string]any{"uid_field": "x"}); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("answer after TTL: %v, want ErrExpired", err)
	}
}

// Two executions (two tabs) never disturb each other, and a second engine on the
// same store can continue either (another replica).
func TestConcurrentExecutionsAndSharedStore(t *testing.T) {
	e := newEnv(t, boltStore, exampleBlueprint(t))
	e.addUser("ann", "a")
	e.addUser("ben", "b")
	other := newEnvOn(t, e.store, e.clock)
	r := req("")
	tab1 := e.start("default-authentication", req("next=/one"))
	tab2 := e.start("default-authentication", req("next=/two"))
	tab1 = e.answer(tab1, r, "uid_field", "ann")
	tab2 = other.answer(tab2, r, "uid_field", "ben")
	tab2 = e.answer(tab2, r, "password", "b")
	tab1 = other.answer(tab1, r, "password", "a")
	if tab1.Response.To != "/one" || tab2.Response.To != "/two" {
		t.Fatalf("redirects crossed: %q %q", tab1.Response.To, tab2.Response.To)
	}
	u1, _ := e.store.GetUser(context.Background(), tab1.NewSession.UserID)
	u2, _ := e.store.GetUser(context.Background(), tab2.NewSession.UserID)
	if u1.Username != "ann" || u2.Username != "ben" {
		t.Fatalf("sessions crossed: %s %s", u1.Username, u2.Username)
	}
}

func TestFreshSessionIDAndTerminateOthers(t *testing.T) {
	e := newEnv(t, memoryStore, `
version: 1
stages:
  - {name: id, type: identification}
  - {name: pw, type: password}
  - {name: login, type: user_login, config: {session_duration: "hours=2", terminate_other_sessions: true}}
flows:
  - slug: auth
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: login, order: 3}]
`)
	u := e.addUser("eve", "pw")
	login := func() *flowengine.Session {
		r := req("")
		res := e.start("auth", r)
		res = e.answer(res, r, "uid_field", "eve")
		return e.answer(res, r, "password", "pw").NewSession
	}
	first := login()
	second := login()
	if first.ID == second.ID {
		t.Fatal("two logins share a session ID")
	}
	if got := second.ExpiresAt.Sub(second.CreatedAt); got != 2*time.Hour {
		t.Fatalf("session_duration: %v", got)
	}
	list, _ := e.store.ListUserSessions(context.Background(), u.ID)
	if len(list) != 1 || list[0].ID != second.ID {
		t.Fatalf("terminate_other_sessions left %d sessions", len(list))
	}
}

func TestRememberMe(t *testing.T) {
	e := newEnv(t, memoryStore, `
version: 1
stages:
  - {name: id, type: identification}
  - {name: pw, type: password}
  - {name: login, type: user_login, config: {session_duration: "seconds=0", remember_me_offset: "days=30"}}
flows:
  - slug: auth
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: login, order: 3}]
`)
	e.addUser("fay", "pw")
	for _, remember := range []string{"false", "true"} {
		r := req("")
		res := e.start("auth", r)
		res = e.answer(res, r, "uid_field", "fay")
		// "Stay signed in" is a checkbox of the password page, not a page of its own.
		wantChallenge(t, res, "password")
		if f := res.Response.Fields; len(f) != 2 || f[1].Key != "remember_me" || f[1].Type != flowengine.FieldCheckbox {
			t.Fatalf("password fields: %+v", f)
		}
		res = e.answer(res, r, "password", "pw", "remember_me", remember)
		s := res.NewSession
		if s == nil {
			t.Fatalf("no session after the password: %+v", res.Response)
		}
		if remember == "true" && (!s.Persistent || s.ExpiresAt.Sub(s.CreatedAt) < 30*24*time.Hour) {
			t.Fatalf("remember me: %+v", s)
		}
		if remember == "false" && s.Persistent {
			t.Fatalf("browser session marked persistent")
		}
	}
}

func TestDesignationLookup(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t), `
version: 1
policies:
  - name: from-office
    rego: |
      package office
      import rego.v1
      allow if input.request.client_ip == "10.1.2.3"
stages:
  - {name: office-deny, type: deny, config: {deny_message: office}}
  - {name: office-login, type: user_login}
flows:
  - slug: a-office
    designation: authentication
    order: -1
    policies: [{policy: from-office}]
    stages: [{stage: office-deny, order: 1}, {stage: office-login, order: 2}]
  - slug: z-late
    designation: authentication
    order: 5
    stages: [{stage: office-login, order: 1}]
`)
	ctx := context.Background()
	f, err := e.engine.FindFlow(ctx, flowengine.DesignationAuthentication, req(""))
	if err != nil || f.Slug != "default-authentication" {
		t.Fatalf("outside office: %v %v", f, err)
	}
	r := req("")
	r.ClientIP = "10.1.2.3"
	if f, _ := e.engine.FindFlow(ctx, flowengine.DesignationAuthentication, r); f.Slug != "a-office" {
		t.Fatalf("in office: %v", f.Slug)
	}
	if _, err := e.engine.FindFlow(ctx, flowengine.DesignationRecovery, r); !errors.Is(err, flowengine.ErrNoFlow) {
		t.Fatalf("no recovery flow: %v", err)
	}
}

func TestConfigSurvivesReload(t *testing.T) {
	e := newEnv(t, boltStore, exampleBlueprint(t))
	fresh := newEnvOn(t, e.store, e.clock) // Reload reads what Apply stored
	if _, err := fresh.engine.Flow("default-authentication"); err != nil {
		t.Fatal(err)
	}
	a, _ := blueprint.Export(e.engine.Config(), blueprint.YAML)
	b, _ := blueprint.Export(fresh.engine.Config(), blueprint.YAML)
	if string(a) != string(b) {
		t.Fatalf("config changed through the store:\n%s\n---\n%s", a, b)
	}
}

// Errors of a rejected answer are shown once more by the next rendering (so an
// HTML form can redirect after POST), then no more.
func TestFlashShownOnce(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t))
	e.addUser("gil", "pw")
	r := req("")
	res := e.start("default-authentication", r)
	res = e.answer(res, r, "uid_field", "gil")
	res = e.answer(res, r, "password", "bad")
	ctx := context.Background()
	first, _ := e.engine.Resume(ctx, res.ExecutionID, r)
	second, _ := e.engine.Resume(ctx, res.ExecutionID, r)
	if len(first.Response.Errors["password"]) != 1 || len(second.Response.Errors) != 0 {
		t.Fatalf("flash: first %v, second %v", first.Response.Errors, second.Response.Errors)
	}
}
