package stages_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/flowgate/flowgate/flowengine"
)

// The relying party of the passkey tests: the request's host and origin.
const (
	waHost   = "login.example.com"
	waOrigin = "https://" + waHost
)

var waB64 = base64.RawURLEncoding

// softAuthenticator is a passkey authenticator in software: one ECDSA P-256
// credential, "none" attestation, a signature counter. It answers the options
// a stage's challenge carries the way a browser would.
type softAuthenticator struct {
	id     []byte
	key    *ecdsa.PrivateKey
	handle []byte // the user handle it was registered with
	count  uint32
}

func newSoftAuthenticator(t *testing.T) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softAuthenticator{id: id, key: key}
}

// pkOptions is the part of the WebAuthn options the authenticator reads.
type pkOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
		Selection        struct {
			UserVerification string `json:"userVerification"`
			ResidentKey      string `json:"residentKey"`
		} `json:"authenticatorSelection"`
	} `json:"publicKey"`
}

func optionsOf(t *testing.T, ch *flowengine.Challenge) pkOptions {
	t.Helper()
	if ch == nil || ch.Data["options"] == nil {
		t.Fatalf("challenge without options: %+v", ch)
	}
	raw, err := json.Marshal(ch.Data["options"])
	if err != nil {
		t.Fatal(err)
	}
	var o pkOptions
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("options %s: %v", raw, err)
	}
	return o
}

func waClientData(typ, challenge, origin string) []byte {
	raw, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return raw
}

// authData is the authenticator data: RP ID hash, flags (user present and
// verified), counter, and the attested credential when attested.
func (a *softAuthenticator) authData(t *testing.T, rpID string, attested bool) []byte {
	t.Helper()
	rpHash := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, rpHash[:]...)
	flags := byte(0x01 | 0x04)
	if attested {
		flags |= 0x40
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if !attested {
		return out
	}
	out = append(out, make([]byte, 16)...) // AAGUID
	out = binary.BigEndian.AppendUint16(out, uint16(len(a.id)))
	out = append(out, a.id...)
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := a.key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose, err := em.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, cose...)
}

// register answers a registration challenge from origin.
func (a *softAuthenticator) register(t *testing.T, ch *flowengine.Challenge, origin string) string {
	t.Helper()
	o := optionsOf(t, ch)
	handle, err := waB64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user id %q: %v", o.PublicKey.User.ID, err)
	}
	a.handle = handle
	em, _ := cbor.CTAP2EncOptions().EncMode()
	att, err := em.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(t, o.PublicKey.RP.ID, true)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"id": waB64.EncodeToString(a.id), "rawId": waB64.EncodeToString(a.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    waB64.EncodeToString(waClientData("webauthn.create", o.PublicKey.Challenge, origin)),
			"attestationObject": waB64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	})
	return string(raw)
}

// assert answers a sign-in challenge from origin, signing with the key.
func (a *softAuthenticator) assert(t *testing.T, ch *flowengine.Challenge, origin string) string {
	t.Helper()
	o := optionsOf(t, ch)
	a.count++
	ad := a.authData(t, o.PublicKey.RPID, false)
	cd := waClientData("webauthn.get", o.PublicKey.Challenge, origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"id": waB64.EncodeToString(a.id), "rawId": waB64.EncodeToString(a.id), "type": "public-key",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    waB64.EncodeToString(cd),
			"authenticatorData": waB64.EncodeToString(ad),
			"signature":         waB64.EncodeToString(sig),
			"userHandle":        waB64.EncodeToString(a.handle),
		},
	})
	return string(raw)
}

// waContext is a stage context on login.example.com over https, with the
// memory store's brute-force regulator.
func (e *stageEnv) waContext(pending *flowengine.User) *flowengine.StageContext {
	sc := e.stageContext(nil, pending, nil)
	sc.Flow = &flowengine.Flow{Slug: "mfa"}
	sc.StageName, sc.StageType = "passkey", "authenticator_webauthn"
	sc.Request.Scheme, sc.Request.Host = "https", waHost
	sc.Services.Regulator = flowengine.NewRegulator(e.store)
	return sc
}

// addUser stores another active user.
func (e *stageEnv) addUser(t *testing.T, name string) *flowengine.User {
	t.Helper()
	u := &flowengine.User{ID: flowengine.NewID(), Username: name, IsActive: true, CreatedAt: writeT0}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// userJSON is the stored user, to show that a refusal changed nothing.
func (e *stageEnv) userJSON(t *testing.T, id string) string {
	t.Helper()
	u, err := e.store.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(u)
	return string(raw)
}

// challengeAndSubmit shows the stage's challenge, lets answer build the
// answer from it and submits that.
func challengeAndSubmit(t *testing.T, s flowengine.Stage, sc *flowengine.StageContext, answer func(*flowengine.Challenge) flowengine.Answer) (*flowengine.Challenge, flowengine.Outcome) {
	t.Helper()
	ctx := context.Background()
	ch, err := s.Challenge(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	a := flowengine.Answer{}
	if ch != nil {
		a = answer(ch)
	}
	out, err := s.Submit(ctx, sc, a)
	if err != nil {
		t.Fatal(err)
	}
	return ch, out
}

// registerPasskey runs the setup stage for u with a new soft authenticator.
func registerPasskey(t *testing.T, e *stageEnv, u *flowengine.User, config map[string]any) *softAuthenticator {
	t.Helper()
	a := newSoftAuthenticator(t)
	_, out := challengeAndSubmit(t, newStage(t, "authenticator_webauthn", config), e.waContext(u), func(ch *flowengine.Challenge) flowengine.Answer {
		return flowengine.Answer{"credential": a.register(t, ch, waOrigin)}
	})
	if out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("registering a passkey for %s: %+v", u.Username, out)
	}
	return a
}

func TestWebAuthnSetupConfig(t *testing.T) {
	checkConfigs(t, "authenticator_webauthn", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"user_verification": "required", "resident_key_requirement": "required",
			"authenticator_attachment": "platform", "friendly_name": "Laptop", "configure_flow": "setup-passkey"}, ""},
		{"authentik null attachment", map[string]any{"authenticator_attachment": nil}, ""},
		{"relying party", map[string]any{"relying_party_id": "example.com", "origins": []any{"https://login.example.com", "https://app.example.com:8443"}}, ""},
		{"bad user verification", map[string]any{"user_verification": "always"}, "user_verification"},
		{"bad resident key", map[string]any{"resident_key_requirement": "yes"}, "resident_key_requirement"},
		{"bad attachment", map[string]any{"authenticator_attachment": "usb"}, "authenticator_attachment"},
		{"ip relying party", map[string]any{"relying_party_id": "192.0.2.1"}, "relying_party_id"},
		{"relying party with port", map[string]any{"relying_party_id": "example.com:443"}, "relying_party_id"},
		{"origin with path", map[string]any{"origins": []any{"https://example.com/login"}}, "origins"},
		{"origin without scheme", map[string]any{"origins": []any{"example.com"}}, "origins"},
		{"unknown key", map[string]any{"rp_id": "x"}, `unknown config key "rp_id"`},
	})
}

// A registration saves the passkey as a device of the user, records the
// method, and shows the same options until answered; the passkey is excluded
// from the next registration and refused if offered again.
func TestWebAuthnRegister(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	s := newStage(t, "authenticator_webauthn", map[string]any{"friendly_name": "Laptop", "user_verification": "required"})
	sc := e.waContext(e.alice)
	ch, err := s.Challenge(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Challenge(ctx, sc)
	o := optionsOf(t, ch)
	if optionsOf(t, again).PublicKey.Challenge != o.PublicKey.Challenge || len(o.PublicKey.Challenge) < 22 {
		t.Fatalf("challenge not kept: %q, %q", o.PublicKey.Challenge, optionsOf(t, again).PublicKey.Challenge)
	}
	if o.PublicKey.RP.ID != waHost || o.PublicKey.User.ID != waB64.EncodeToString([]byte(e.alice.ID)) ||
		o.PublicKey.Selection.UserVerification != "required" || o.PublicKey.Selection.ResidentKey != "preferred" ||
		len(o.PublicKey.ExcludeCredentials) != 0 {
		t.Fatalf("options %+v", o)
	}
	if f := ch.Fields; len(f) != 1 || f[0].Key != "credential" || f[0].Type != flowengine.FieldHidden {
		t.Fatalf("fields %+v", f)
	}
	a := newSoftAuthenticator(t)
	out, err := s.Submit(ctx, sc, flowengine.Answer{"credential": a.register(t, ch, waOrigin)})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("register: %+v %v", out, err)
	}
	u, _ := e.store.GetUser(ctx, e.alice.ID)
	devs := u.DevicesOf(flowengine.DeviceWebAuthn)
	if len(devs) != 1 || devs[0].Name != "Laptop" || devs[0].ID == "" || !devs[0].CreatedAt.Equal(writeT0) ||
		devs[0].WebAuthn == nil || string(devs[0].WebAuthn.CredentialID) != string(a.id) || !strings.Contains(string(devs[0].WebAuthn.Credential), `"publicKey"`) {
		t.Fatalf("devices %+v", u.Devices)
	}
	if m := sc.AuthMethods(); len(m) != 1 || m[0] != flowengine.MethodWebAuthn {
		t.Fatalf("auth methods %v", m)
	}

	// Registering again: the passkey is excluded, and refused if offered.
	sc = e.waContext(e.alice)
	before := e.userJSON(t, e.alice.ID)
	ch, out = challengeAndSubmit(t, s, sc, func(ch *flowengine.Challenge) flowengine.Answer {
		return flowengine.Answer{"credential": a.register(t, ch, waOrigin)}
	})
	if ex := optionsOf(t, ch).PublicKey.ExcludeCredentials; len(ex) != 1 || ex[0].ID != waB64.EncodeToString(a.id) {
		t.Fatalf("exclusions %+v", ex)
	}
	wantRefusal(t, out, "already registered")
	if e.userJSON(t, e.alice.ID) != before {
		t.Fatal("a refused passkey changed the user")
	}
}

// wantRefusal checks an Invalid outcome whose credential error says want.
func wantRefusal(t *testing.T, out flowengine.Outcome, want string) {
	t.Helper()
	errs := strings.Join(out.Errors["credential"], " ") + strings.Join(out.Messages, " ")
	if out.Kind != flowengine.OutcomeInvalid || !strings.Contains(errs, want) {
		t.Fatalf("outcome %+v, want a refusal saying %q", out, want)
	}
}

// Wrong registrations are refused with a clear message and change nothing.
func TestWebAuthnRegisterRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		answer func(t *testing.T, e *stageEnv, ch *flowengine.Challenge) string
		want   string
	}{
		{"another origin", func(t *testing.T, e *stageEnv, ch *flowengine.Challenge) string {
			return newSoftAuthenticator(t).register(t, ch, "https://evil.example.net")
		}, "another site"},
		{"a challenge of another execution", func(t *testing.T, e *stageEnv, ch *flowengine.Challenge) string {
			other, err := newStage(t, "authenticator_webauthn", nil).Challenge(ctx, e.waContext(e.alice))
			if err != nil {
				t.Fatal(err)
			}
			return newSoftAuthenticator(t).register(t, other, waOrigin)
		}, "earlier request"},
		{"not JSON", func(*testing.T, *stageEnv, *flowengine.Challenge) string { return "{not json" }, "could not be read"},
		{"empty object", func(*testing.T, *stageEnv, *flowengine.Challenge) string { return "{}" }, "could not be read"},
		{"null", func(*testing.T, *stageEnv, *flowengine.Challenge) string { return "null" }, "could not be read"},
		{"garbled attestation", func(t *testing.T, e *stageEnv, ch *flowengine.Challenge) string {
			var m map[string]any
			json.Unmarshal([]byte(newSoftAuthenticator(t).register(t, ch, waOrigin)), &m)
			m["response"].(map[string]any)["attestationObject"] = waB64.EncodeToString([]byte{0xa3, 0x63, 0x66, 0x6d, 0x74, 0xff})
			raw, _ := json.Marshal(m)
			return string(raw)
		}, "could not be read"},
		{"assertion instead of attestation", func(t *testing.T, e *stageEnv, ch *flowengine.Challenge) string {
			a := newSoftAuthenticator(t)
			ch.Data["options"] = map[string]any{"publicKey": map[string]any{"challenge": optionsOf(t, ch).PublicKey.Challenge, "rpId": waHost}}
			return a.assert(t, ch, waOrigin)
		}, "could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			before := e.userJSON(t, e.alice.ID)
			s := newStage(t, "authenticator_webauthn", nil)
			sc := e.waContext(e.alice)
			_, out := challengeAndSubmit(t, s, sc, func(ch *flowengine.Challenge) flowengine.Answer {
				return flowengine.Answer{"credential": tc.answer(t, e, ch)}
			})
			wantRefusal(t, out, tc.want)
			if e.userJSON(t, e.alice.ID) != before || len(sc.AuthMethods()) != 0 {
				t.Fatal("a refused registration changed something")
			}
		})
	}
	t.Run("no pending user", func(t *testing.T) {
		e := newStageEnv(t)
		_, out := challengeAndSubmit(t, newStage(t, "authenticator_webauthn", nil), e.waContext(nil), nil)
		if out.Kind != flowengine.OutcomeDeny || !strings.Contains(strings.Join(out.Messages, ""), "sign in first") {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		e := newStageEnv(t)
		_, out := challengeAndSubmit(t, newStage(t, "authenticator_webauthn", nil), e.waContext(e.alice),
			func(*flowengine.Challenge) flowengine.Answer { return flowengine.Answer{"credential": " "} })
		wantRefusal(t, out, "with the button")
	})
}

// FuzzWebAuthnRegisterAnswer: whatever arrives as the credential, the stage
// refuses it or accepts it, and never panics or errors.
func FuzzWebAuthnRegisterAnswer(f *testing.F) {
	f.Add(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`)
	f.Add(`{"id":"","type":"public-key","response":{}}`)
	f.Add("[]")
	f.Fuzz(func(t *testing.T, answer string) {
		e := newStageEnv(t)
		s := newStage(t, "authenticator_webauthn", nil)
		sc := e.waContext(e.alice)
		if _, err := s.Challenge(context.Background(), sc); err != nil {
			t.Fatal(err)
		}
		out, err := s.Submit(context.Background(), sc, flowengine.Answer{"credential": answer})
		if err != nil || out.Kind == flowengine.OutcomeContinue {
			t.Fatalf("answer %q: %+v %v", answer, out, err)
		}
	})
}
