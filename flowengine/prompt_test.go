package flowengine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

const promptEnrollYAML = `
version: 1
policies:
  - name: password-strength
    rego: |
      package strength
      allow if flowgate.password_strength(input.prompt.password).score >= 3
      messages contains "Choose a stronger password." if flowgate.password_strength(input.prompt.password).score < 3
stages:
  - name: enroll-prompt
    type: prompt
    config:
      fields:
        - {field_key: username, label: Username, type: username, required: true, order: 0}
        - {field_key: password, label: Password, type: password, required: true, order: 1}
        - {field_key: password_repeat, label: Password (repeat), type: password, required: true, order: 2}
      validation_policies: [password-strength]
  - {name: enroll-write, type: user_write}
  - {name: enroll-login, type: user_login}
flows:
  - slug: enroll
    designation: enrollment
    stages: [{stage: enroll-prompt, order: 1}, {stage: enroll-write, order: 2}, {stage: enroll-login, order: 3}]
`

// TestPromptEnrollment runs prompt → user_write → user_login with a password
// strength validation policy: a weak password gets the policy's message and
// writes nothing; a strong one creates the user and signs them in.
func TestPromptEnrollment(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memoryStore, promptEnrollYAML)
	r := req("")
	res := e.start("enroll", r)
	wantChallenge(t, res, "prompt")
	res = e.answer(res, r, "username", "nina", "password", "password", "password_repeat", "password")
	wantChallenge(t, res, "prompt")
	// The policy's message stands next to the password field.
	if got := strings.Join(res.Response.Errors["password"], " "); !strings.Contains(got, "Choose a stronger password.") {
		t.Fatalf("password field errors %q (messages %q), want the policy's message", got, res.Response.Messages)
	}
	if _, err := e.store.GetUserByUsername(ctx, "nina"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("weak password wrote a user: %v", err)
	}
	const strong = "correct horse battery staple 7!"
	res = e.answer(res, r, "username", "nina", "password", strong, "password_repeat", strong)
	if res.Response.Type != flowengine.TypeRedirect || res.NewSession == nil {
		t.Fatalf("got %s (%q), session %v; want a redirect with a new session", res.Response.Type, res.Response.Message, res.NewSession)
	}
	u, err := e.store.GetUserByUsername(ctx, "nina")
	if err != nil {
		t.Fatal(err)
	}
	if res.NewSession.UserID != u.ID {
		t.Fatalf("session user %s, want %s", res.NewSession.UserID, u.ID)
	}
	if ok, _ := flowengine.VerifyPassword(u.PasswordHash, strong); !ok {
		t.Fatal("password does not verify")
	}
}

// TestPromptUnknownPolicy: a validation policy that does not exist fails the
// blueprint apply, naming the stage.
func TestPromptUnknownPolicy(t *testing.T) {
	e := newEnv(t, memoryStore)
	err := applyYAML(e.engine, strings.Replace(promptEnrollYAML, "validation_policies: [password-strength]", "validation_policies: [no-such-policy]", 1))
	if err == nil || !strings.Contains(err.Error(), "enroll-prompt") || !strings.Contains(err.Error(), "no-such-policy") {
		t.Fatalf("apply: %v, want an error naming the stage and the policy", err)
	}
	if _, ferr := e.engine.Flow("enroll"); !errors.Is(ferr, flowengine.ErrNotFound) {
		t.Fatalf("flow loaded despite the error: %v", ferr)
	}
}
