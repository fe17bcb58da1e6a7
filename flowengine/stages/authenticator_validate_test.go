package stages_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/pquerna/otp/totp"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func TestValidateConfig(t *testing.T) {
	checkConfigs(t, "authenticator_validate", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"device_classes": []any{"static", "totp", "webauthn"}, "not_configured_action": "configure",
			"configuration_stages": []any{"setup-totp"}, "webauthn_user_verification": "required"}, ""},
		{"passwordless", map[string]any{"device_classes": []any{"webauthn"}, "relying_party_id": "example.com",
			"origins": []any{"https://login.example.com"}, "failed_attempts_before_cancel": 3}, ""},
		{"deny", map[string]any{"not_configured_action": "deny"}, ""},
		{"unknown class", map[string]any{"device_classes": []any{"sms"}}, "device_classes"},
		{"no class", map[string]any{"device_classes": []any{}}, "device_classes"},
		{"bad action", map[string]any{"not_configured_action": "ignore"}, "not_configured_action"},
		{"configure without stages", map[string]any{"not_configured_action": "configure"}, "configuration_stages"},
		{"configure itself", map[string]any{"not_configured_action": "configure", "configuration_stages": []any{"s"}}, "configuration_stages"},
		{"bad user verification", map[string]any{"webauthn_user_verification": "sometimes"}, "webauthn_user_verification"},
		{"zero attempts", map[string]any{"failed_attempts_before_cancel": 0}, "at least 1"},
		{"bad relying party", map[string]any{"relying_party_id": "https://example.com"}, "relying_party_id"},
		{"unknown key", map[string]any{"device_class": []any{"totp"}}, `unknown config key "device_class"`},
	})
	s := newStage(t, "authenticator_validate", map[string]any{"not_configured_action": "configure", "configuration_stages": []any{"a", "b"}})
	if su, ok := s.(flowengine.StageUser); !ok || !slices.Equal(su.StageNames(), []string{"a", "b"}) {
		t.Fatalf("StageNames of %T", s)
	}
}

// validateContext is a stage context for authenticator_validate.
func (e *stageEnv) validateContext(pending *flowengine.User) *flowengine.StageContext {
	sc := e.waContext(pending)
	sc.StageName, sc.StageType = "mfa", "authenticator_validate"
	return sc
}

func credentialAnswer(t *testing.T, a *softAuthenticator, origin string) func(*flowengine.Challenge) flowengine.Answer {
	return func(ch *flowengine.Challenge) flowengine.Answer {
		return flowengine.Answer{"credential": a.assert(t, ch, origin)}
	}
}

// A second factor by passkey: the challenge names alice's passkey, the
// assertion continues the flow, records the method and the use.
func TestValidateWebAuthn(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	a := registerPasskey(t, e, e.alice, nil)
	e.clock.Advance(3600e9)
	s := newStage(t, "authenticator_validate", nil)
	sc := e.validateContext(e.alice)
	ch, out := challengeAndSubmit(t, s, sc, credentialAnswer(t, a, waOrigin))
	if out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v", out)
	}
	o := optionsOf(t, ch)
	if o.PublicKey.RPID != waHost || len(o.PublicKey.AllowCredentials) != 1 || o.PublicKey.AllowCredentials[0].ID != waB64.EncodeToString(a.id) {
		t.Fatalf("options %+v", o)
	}
	if f := ch.Fields; len(f) != 1 || f[0].Key != "credential" || !f[0].Required {
		t.Fatalf("fields %+v", f)
	}
	if dc, _ := ch.Data["device_classes"].([]string); !slices.Equal(dc, []string{"webauthn"}) {
		t.Fatalf("data %+v", ch.Data)
	}
	if m := sc.AuthMethods(); !slices.Equal(m, []string{flowengine.MethodWebAuthn}) {
		t.Fatalf("methods %v", m)
	}
	u, _ := e.store.GetUser(ctx, e.alice.ID)
	d := u.DevicesOf(flowengine.DeviceWebAuthn)[0]
	if !d.LastUsed.Equal(writeT0.Add(3600e9)) || !strings.Contains(string(d.WebAuthn.Credential), `"signCount":1`) {
		t.Fatalf("device after use: %+v %s", d, d.WebAuthn.Credential)
	}
	// An answer after the ceremony's five minutes: refused.
	sc = e.validateContext(e.alice)
	ch, err := s.Challenge(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5*60e9 + 1e9)
	out, err = s.Submit(ctx, sc, flowengine.Answer{"credential": a.assert(t, ch, waOrigin)})
	if err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, out, "earlier request")
	// The same assertion again, against the next challenge: refused.
	replay := a.assert(t, ch, waOrigin)
	_, out = challengeAndSubmit(t, s, sc, func(*flowengine.Challenge) flowengine.Answer { return flowengine.Answer{"credential": replay} })
	wantRefusal(t, out, "earlier request")
}

// Wrong assertions are refused with a clear message and change nothing.
func TestValidateWebAuthnRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		answer func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string
		want   string
	}{
		{"another user's passkey", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			return bobs.assert(t, ch, waOrigin)
		}, "not registered for this account"},
		{"another origin", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			return a.assert(t, ch, "https://login.example.com.evil.test")
		}, "another site"},
		{"a challenge of an earlier execution", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			earlier, err := newStage(t, "authenticator_validate", nil).Challenge(ctx, e.validateContext(e.alice))
			if err != nil {
				t.Fatal(err)
			}
			return a.assert(t, earlier, waOrigin)
		}, "earlier request"},
		{"a forged signature", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			forger := *a
			forger.key = newSoftAuthenticator(t).key
			return forger.assert(t, ch, waOrigin)
		}, "could not be verified"},
		{"garbled JSON", func(*testing.T, *stageEnv, *softAuthenticator, *softAuthenticator, *flowengine.Challenge) string {
			return `{"id": 7, "response": [}`
		}, "could not be read"},
		{"garbled authenticator data", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			return strings.Replace(a.assert(t, ch, waOrigin), `"authenticatorData":"`, `"authenticatorData":"AAAA`, 1)
		}, "could"},
		{"a registration instead of an assertion", func(t *testing.T, e *stageEnv, a, bobs *softAuthenticator, ch *flowengine.Challenge) string {
			return a.register(t, ch, waOrigin)
		}, "could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			a := registerPasskey(t, e, e.alice, nil)
			bob := e.addUser(t, "bob")
			bobs := registerPasskey(t, e, bob, nil)
			before, bobBefore := e.userJSON(t, e.alice.ID), e.userJSON(t, bob.ID)
			sc := e.validateContext(e.alice)
			_, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", nil), sc, func(ch *flowengine.Challenge) flowengine.Answer {
				return flowengine.Answer{"credential": tc.answer(t, e, a, bobs, ch)}
			})
			wantRefusal(t, out, tc.want)
			if e.userJSON(t, e.alice.ID) != before || e.userJSON(t, bob.ID) != bobBefore || len(sc.AuthMethods()) != 0 {
				t.Fatal("a refused assertion changed something")
			}
		})
	}
	t.Run("no pending user", func(t *testing.T) {
		e := newStageEnv(t)
		registerPasskey(t, e, e.alice, nil)
		for _, classes := range [][]any{nil, {"webauthn", "totp"}} {
			cfg := map[string]any{}
			if classes != nil {
				cfg["device_classes"] = classes
			}
			ch, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", cfg), e.validateContext(nil), nil)
			if ch != nil || out.Kind != flowengine.OutcomeDeny || out.Messages[0] != "There is no account to verify; start again." {
				t.Fatalf("classes %v: challenge %+v, outcome %+v", classes, ch, out)
			}
		}
	})
}

// FuzzValidateAnswer: whatever arrives as the credential, the stage refuses
// it, and never panics or errors.
func FuzzValidateAnswer(f *testing.F) {
	f.Add(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":"AA"}}`)
	f.Add(`{"id":"x","type":"public-key"}`)
	f.Fuzz(func(t *testing.T, answer string) {
		e := newStageEnv(t)
		s := newStage(t, "authenticator_validate", map[string]any{"device_classes": []any{"webauthn"}})
		sc := e.validateContext(nil)
		if _, err := s.Challenge(context.Background(), sc); err != nil {
			t.Fatal(err)
		}
		out, err := s.Submit(context.Background(), sc, flowengine.Answer{"credential": answer})
		if err != nil || out.Kind == flowengine.OutcomeContinue {
			t.Fatalf("answer %q: %+v %v", answer, out, err)
		}
	})
}

// Passwordless: with device_classes [webauthn] and no pending user, a
// discoverable passkey names its account, which becomes the pending user.
func TestValidatePasswordless(t *testing.T) {
	ctx := context.Background()
	passwordless := map[string]any{"device_classes": []any{"webauthn"}}
	e := newStageEnv(t)
	a := registerPasskey(t, e, e.alice, map[string]any{"resident_key_requirement": "required"})
	sc := e.validateContext(nil)
	ch, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", passwordless), sc, credentialAnswer(t, a, waOrigin))
	if out.Kind != flowengine.OutcomeContinue || sc.Context[flowengine.CtxPendingUser] != e.alice.ID ||
		!slices.Equal(sc.AuthMethods(), []string{flowengine.MethodWebAuthn}) {
		t.Fatalf("outcome %+v, context %+v", out, sc.Context)
	}
	if o := optionsOf(t, ch); len(o.PublicKey.AllowCredentials) != 0 || o.PublicKey.RPID != waHost {
		t.Fatalf("discoverable options %+v", o)
	}

	t.Run("unknown user handle", func(t *testing.T) {
		stranger := *a
		stranger.handle = []byte(flowengine.NewID())
		sc := e.validateContext(nil)
		_, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", passwordless), sc, credentialAnswer(t, &stranger, waOrigin))
		wantRefusal(t, out, "not registered here")
		if sc.Context[flowengine.CtxPendingUser] != nil {
			t.Fatal("pending user set")
		}
	})
	t.Run("another user's handle", func(t *testing.T) {
		bob := e.addUser(t, "bob")
		impostor := *a
		impostor.handle = []byte(bob.ID)
		sc := e.validateContext(nil)
		_, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", passwordless), sc, credentialAnswer(t, &impostor, waOrigin))
		wantRefusal(t, out, "not registered here")
		if sc.Context[flowengine.CtxPendingUser] != nil {
			t.Fatal("pending user set")
		}
	})
	t.Run("inactive user", func(t *testing.T) {
		u, _ := e.store.GetUser(ctx, e.alice.ID)
		u.IsActive = false
		if err := e.store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		before := e.userJSON(t, e.alice.ID)
		sc := e.validateContext(nil)
		_, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", passwordless), sc, credentialAnswer(t, a, waOrigin))
		wantRefusal(t, out, "cannot sign in")
		if sc.Context[flowengine.CtxPendingUser] != nil || e.userJSON(t, e.alice.ID) != before {
			t.Fatal("an inactive user signed in, or was changed")
		}
	})
}

// Failures count in the regulator like wrong passwords: the lock refuses even
// a right answer, and failed_attempts_before_cancel starts the flow over.
func TestValidateRegulation(t *testing.T) {
	e := newStageEnv(t)
	a := registerPasskey(t, e, e.alice, nil)
	s := newStage(t, "authenticator_validate", map[string]any{"failed_attempts_before_cancel": 20})
	sc := e.validateContext(e.alice)
	for i := range flowengine.DefaultUserFailures {
		_, out := challengeAndSubmit(t, s, sc, func(*flowengine.Challenge) flowengine.Answer {
			return flowengine.Answer{"credential": "{}"}
		})
		if out.Kind != flowengine.OutcomeInvalid || len(out.Errors["credential"]) == 0 {
			t.Fatalf("failure %d: %+v", i, out)
		}
	}
	_, out := challengeAndSubmit(t, s, sc, credentialAnswer(t, a, waOrigin))
	if out.Kind != flowengine.OutcomeInvalid || !slices.Contains(out.Messages, "Too many failed attempts. Try again later.") ||
		len(sc.AuthMethods()) != 0 {
		t.Fatalf("locked account: %+v", out)
	}
	// Passwordless answers for the locked account are refused too.
	sc = e.validateContext(nil)
	_, out = challengeAndSubmit(t, newStage(t, "authenticator_validate", map[string]any{"device_classes": []any{"webauthn"}}), sc,
		credentialAnswer(t, a, waOrigin))
	if out.Kind != flowengine.OutcomeInvalid || !slices.Contains(out.Messages, "Too many failed attempts. Try again later.") ||
		sc.Context[flowengine.CtxPendingUser] != nil {
		t.Fatalf("locked account, passwordless: %+v", out)
	}

	t.Run("cancel", func(t *testing.T) {
		e := newStageEnv(t)
		registerPasskey(t, e, e.alice, nil)
		s := newStage(t, "authenticator_validate", map[string]any{"failed_attempts_before_cancel": 2})
		sc := e.validateContext(e.alice)
		kinds := []flowengine.OutcomeKind{}
		for range 2 {
			_, out := challengeAndSubmit(t, s, sc, func(*flowengine.Challenge) flowengine.Answer { return flowengine.Answer{"credential": "x"} })
			kinds = append(kinds, out.Kind)
		}
		if !slices.Equal(kinds, []flowengine.OutcomeKind{flowengine.OutcomeInvalid, flowengine.OutcomeCancel}) {
			t.Fatalf("outcomes %v", kinds)
		}
	})
}

// Codes: a TOTP code or a recovery code, each recorded as its method, checked
// by the setup stages' checkTOTP and checkStatic; wrong codes are regulated.
func TestValidateCodes(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	box, err := flowengine.NewSecretBox(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	u, _ := e.store.GetUser(ctx, e.alice.ID)
	totpDev := flowengine.Device{ID: flowengine.NewID(), Class: flowengine.DeviceTOTP, Name: "App", CreatedAt: writeT0,
		TOTP: &flowengine.TOTPDevice{Digits: 6, Period: 30}}
	if totpDev.TOTP.Secret, err = box.Seal([]byte(secret), []byte(u.ID+"/"+totpDev.ID)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("salt" + "abcd2345efgh"))
	u.Devices = append(u.Devices, totpDev, flowengine.Device{ID: flowengine.NewID(), Class: flowengine.DeviceStatic,
		Name: "Recovery codes", CreatedAt: writeT0, Static: &flowengine.StaticDevice{Salt: "salt", Codes: []string{hex.EncodeToString(sum[:])}}})
	if err := e.store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s := newStage(t, "authenticator_validate", nil)
	run := func(code string) (*flowengine.StageContext, *flowengine.Challenge, flowengine.Outcome) {
		sc := e.validateContext(e.alice)
		sc.Services.Secrets = box
		ch, out := challengeAndSubmit(t, s, sc, func(*flowengine.Challenge) flowengine.Answer { return flowengine.Answer{"code": code} })
		return sc, ch, out
	}
	now, _ := totp.GenerateCode(secret, e.clock.Now())
	sc, ch, out := run(now)
	if out.Kind != flowengine.OutcomeContinue || !slices.Equal(sc.AuthMethods(), []string{flowengine.MethodOTP}) {
		t.Fatalf("TOTP code: %+v", out)
	}
	if f := ch.Fields; len(f) != 1 || f[0].Key != "code" || f[0].Type != flowengine.FieldCode || f[0].Autocomplete != "one-time-code" {
		t.Fatalf("fields %+v", f)
	}
	if dc, _ := ch.Data["device_classes"].([]string); !slices.Equal(dc, []string{"totp", "static"}) {
		t.Fatalf("data %+v", ch.Data)
	}
	if _, _, out := run(now); out.Kind != flowengine.OutcomeInvalid || out.Errors["code"][0] != "Invalid code." {
		t.Fatalf("a TOTP code used twice: %+v", out)
	}
	if sc, _, out := run("ABCD-2345-EFGH"); out.Kind != flowengine.OutcomeContinue || !slices.Equal(sc.AuthMethods(), []string{flowengine.MethodStatic}) {
		t.Fatalf("recovery code: %+v", out)
	}
	if _, _, out := run("abcd2345efgh"); out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("a recovery code used twice: %+v", out)
	}
	for range flowengine.DefaultUserFailures - 1 { // with the reused recovery code: 5 since the last success
		run("000000")
	}
	e.clock.Advance(60e9)
	if _, _, out := run(valTOTPCode(t, secret, e)); out.Kind != flowengine.OutcomeInvalid || !slices.Contains(out.Messages, "Too many failed attempts. Try again later.") {
		t.Fatalf("locked account, right code: %+v", out)
	}
	// Only passkeys accepted: alice's codes are not asked for, and without a
	// passkey she counts as not configured (skip).
	sc = e.validateContext(e.alice)
	if ch, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", map[string]any{"device_classes": []any{"webauthn"}}), sc, nil); ch != nil ||
		out.Kind != flowengine.OutcomeContinue || len(sc.AuthMethods()) != 0 {
		t.Fatalf("webauthn only: %+v %+v", ch, out)
	}
}

func valTOTPCode(t *testing.T, secret string, e *stageEnv) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// With both a passkey and codes, either answers; neither field is required
// on its own.
func TestValidateEither(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	a := registerPasskey(t, e, e.alice, nil)
	u, _ := e.store.GetUser(ctx, e.alice.ID)
	sum := sha256.Sum256([]byte("s" + "code1"))
	u.Devices = append(u.Devices, flowengine.Device{ID: flowengine.NewID(), Class: flowengine.DeviceStatic, CreatedAt: writeT0,
		Static: &flowengine.StaticDevice{Salt: "s", Codes: []string{hex.EncodeToString(sum[:])}}})
	if err := e.store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s := newStage(t, "authenticator_validate", nil)
	ch, out := challengeAndSubmit(t, s, e.validateContext(e.alice), func(*flowengine.Challenge) flowengine.Answer { return flowengine.Answer{} })
	if len(ch.Fields) != 2 || ch.Fields[0].Required || ch.Fields[1].Required || out.Kind != flowengine.OutcomeInvalid || len(out.Errors["code"]) == 0 {
		t.Fatalf("fields %+v, empty answer %+v", ch.Fields, out)
	}
	if dc, _ := ch.Data["device_classes"].([]string); !slices.Equal(dc, []string{"static", "webauthn"}) {
		t.Fatalf("data %+v", ch.Data)
	}
	if _, out := challengeAndSubmit(t, s, e.validateContext(e.alice), credentialAnswer(t, a, waOrigin)); out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("passkey: %+v", out)
	}
	if _, out := challengeAndSubmit(t, s, e.validateContext(e.alice), func(*flowengine.Challenge) flowengine.Answer {
		return flowengine.Answer{"code": "code1"}
	}); out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("recovery code: %+v", out)
	}
}

func TestValidateNotConfigured(t *testing.T) {
	for _, tc := range []struct {
		action string
		kind   flowengine.OutcomeKind
	}{{"", flowengine.OutcomeContinue}, {"skip", flowengine.OutcomeContinue}, {"deny", flowengine.OutcomeDeny}} {
		e := newStageEnv(t)
		sc := e.validateContext(e.alice)
		ch, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", map[string]any{"not_configured_action": tc.action}), sc, nil)
		if ch != nil || out.Kind != tc.kind || len(sc.AuthMethods()) != 0 {
			t.Fatalf("%q: challenge %+v, outcome %+v", tc.action, ch, out)
		}
	}
	// A passkey whose stored credential does not decode still counts as
	// configured: the user is refused, never skipped past the second factor.
	e := newStageEnv(t)
	u, _ := e.store.GetUser(context.Background(), e.alice.ID)
	u.Devices = append(u.Devices, flowengine.Device{ID: "d1", Class: flowengine.DeviceWebAuthn, CreatedAt: writeT0,
		WebAuthn: &flowengine.WebAuthnDevice{CredentialID: []byte{1}, Credential: []byte(`"garbled"`)}})
	if err := e.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	sc := e.validateContext(e.alice)
	ch, out := challengeAndSubmit(t, newStage(t, "authenticator_validate", nil), sc, nil)
	if ch != nil || out.Kind != flowengine.OutcomeDeny || len(sc.AuthMethods()) != 0 {
		t.Fatalf("unreadable passkey: challenge %+v, outcome %+v", ch, out)
	}
}

const valConfigureYAML = `version: 1
stages:
  - {name: id, type: identification}
  - {name: pw, type: password}
  - {name: setup-passkey, type: authenticator_webauthn}
  - {name: setup-codes, type: authenticator_static}
  - name: mfa-one
    type: authenticator_validate
    config: {not_configured_action: configure, configuration_stages: [setup-passkey]}
  - name: mfa-two
    type: authenticator_validate
    config: {not_configured_action: configure, configuration_stages: [setup-codes, setup-passkey]}
  - {name: mfa-pl, type: authenticator_validate, config: {device_classes: [webauthn]}}
  - {name: login, type: user_login}
flows:
  - slug: one
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: mfa-one, order: 3}, {stage: login, order: 4}]
  - slug: two
    designation: authentication
    stages: [{stage: id, order: 1}, {stage: pw, order: 2}, {stage: mfa-two, order: 3}, {stage: login, order: 4}]
  - slug: passwordless
    designation: authentication
    stages: [{stage: mfa-pl, order: 1}, {stage: login, order: 2}]
`

// valEngine loads doc into an engine on e's store.
func valEngine(t *testing.T, e *stageEnv, doc string) (*flowengine.Engine, error) {
	t.Helper()
	ctx := context.Background()
	eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock,
		Services: flowengine.Services{KeepHashes: true, Regulator: flowengine.NewRegulator(e.store)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse("mfa.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return eng, bp.Apply(ctx, eng)
}

// not_configured_action configure runs the one configuration stage next, or
// asks which of several; a configuration stage that does not exist fails the
// config load.
func TestValidateConfigure(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	e.alice.PasswordHash = flowengine.TestHash("pw")
	if err := e.store.UpdateUser(ctx, e.alice); err != nil {
		t.Fatal(err)
	}
	eng, err := valEngine(t, e, valConfigureYAML)
	if err != nil {
		t.Fatal(err)
	}
	req := &flowengine.Request{Method: "POST", Scheme: "https", Host: waHost, Path: "/", ClientIP: "192.0.2.7"}
	signIn := func(slug string) *flowengine.Result {
		t.Helper()
		res, err := eng.Start(ctx, slug, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []map[string]any{{"uid_field": "alice"}, {"password": "pw"}} {
			if res, err = eng.Answer(ctx, res.ExecutionID, req, a); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	res := signIn("one")
	if res.Response.Type != flowengine.TypeChallenge || res.Response.Stage.Type != "authenticator_webauthn" {
		t.Fatalf("after password, flow one: %+v", res.Response)
	}
	// The inserted stage registers a passkey; the flow then signs alice in.
	a := newSoftAuthenticator(t)
	ch := &flowengine.Challenge{Data: res.Response.Data}
	res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"credential": a.register(t, ch, waOrigin)})
	if err != nil || res.Response.Type != flowengine.TypeRedirect || res.NewSession == nil ||
		!slices.Equal(res.NewSession.AuthMethods, []string{flowengine.MethodPassword, flowengine.MethodWebAuthn}) {
		t.Fatalf("after registering: %+v %v", res, err)
	}

	// Passwordless through the engine: the passkey alone signs alice in.
	res, err = eng.Start(ctx, "passwordless", req)
	if err != nil || res.Response.Stage.Type != "authenticator_validate" {
		t.Fatalf("passwordless start: %+v %v", res, err)
	}
	ch = &flowengine.Challenge{Data: res.Response.Data}
	res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"credential": a.assert(t, ch, waOrigin)})
	if err != nil || res.Response.Type != flowengine.TypeRedirect || res.NewSession == nil || res.NewSession.UserID != e.alice.ID ||
		!slices.Equal(res.NewSession.AuthMethods, []string{flowengine.MethodWebAuthn}) {
		t.Fatalf("passwordless: %+v %v", res, err)
	}

	bob := e.addUser(t, "bob")
	bob.PasswordHash = flowengine.TestHash("pw")
	if err := e.store.UpdateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	res, err = eng.Start(ctx, "two", req)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []map[string]any{{"uid_field": "bob"}, {"password": "pw"}} {
		if res, err = eng.Answer(ctx, res.ExecutionID, req, a); err != nil {
			t.Fatal(err)
		}
	}
	f := res.Response.Fields
	if res.Response.Stage.Type != "authenticator_validate" || len(f) != 1 || f[0].Key != "stage" || f[0].Type != flowengine.FieldChoice ||
		len(f[0].Choices) != 2 || f[0].Choices[0] != (flowengine.Choice{Value: "setup-codes", Label: "Recovery codes"}) ||
		f[0].Choices[1] != (flowengine.Choice{Value: "setup-passkey", Label: "Passkey or security key"}) {
		t.Fatalf("choice: %+v", res.Response)
	}
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"stage": "nope"}); err != nil || len(res.Response.Errors["stage"]) == 0 {
		t.Fatalf("unknown choice: %+v %v", res, err)
	}
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"stage": "setup-passkey"}); err != nil || res.Response.Stage.Type != "authenticator_webauthn" {
		t.Fatalf("chosen: %+v %v", res, err)
	}

	// A configuration stage that does not exist fails the load.
	bad := strings.Replace(valConfigureYAML, "configuration_stages: [setup-passkey]", "configuration_stages: [setup-nothing]", 1)
	if _, err := valEngine(t, newStageEnv(t), bad); err == nil || !strings.Contains(err.Error(), "setup-nothing") {
		t.Fatalf("dangling configuration stage: %v", err)
	}
}
