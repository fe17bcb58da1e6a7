package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("authenticator_webauthn", newAuthenticatorWebAuthn) }

// AuthenticatorWebAuthnConfig configures the passkey setup stage.
type AuthenticatorWebAuthnConfig struct {
	// UserVerification asks the authenticator to check who holds it (PIN,
	// fingerprint): required, preferred or discouraged (default preferred).
	UserVerification string `json:"user_verification,omitempty"`
	// ResidentKeyRequirement asks for a discoverable credential, one that can
	// sign in without a username (passwordless): discouraged, preferred or
	// required (default preferred).
	ResidentKeyRequirement string `json:"resident_key_requirement,omitempty"`
	// AuthenticatorAttachment limits the kind of authenticator: platform (built
	// into the device), cross-platform (a security key or phone), or any
	// (default "", any).
	AuthenticatorAttachment string `json:"authenticator_attachment,omitempty"`
	// FriendlyName names the new device in the user's list (default "Passkey").
	FriendlyName string `json:"friendly_name,omitempty"`
	RelyingPartyConfig
	// ConfigureFlow is accepted for authentik exports and has no effect.
	ConfigureFlow string `json:"configure_flow,omitempty"`
}

type authenticatorWebAuthn struct {
	cfg AuthenticatorWebAuthnConfig
	uv  protocol.UserVerificationRequirement
	rk  protocol.ResidentKeyRequirement
}

func newAuthenticatorWebAuthn(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &authenticatorWebAuthn{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	var err error
	if s.uv, err = userVerification("user_verification", s.cfg.UserVerification); err != nil {
		return nil, err
	}
	switch rk := protocol.ResidentKeyRequirement(s.cfg.ResidentKeyRequirement); rk {
	case "":
		s.rk = protocol.ResidentKeyRequirementPreferred
	case protocol.ResidentKeyRequirementDiscouraged, protocol.ResidentKeyRequirementPreferred, protocol.ResidentKeyRequirementRequired:
		s.rk = rk
	default:
		return nil, fmt.Errorf("resident_key_requirement: %q is not discouraged, preferred or required", rk)
	}
	switch protocol.AuthenticatorAttachment(s.cfg.AuthenticatorAttachment) {
	case "", protocol.Platform, protocol.CrossPlatform:
	default:
		return nil, fmt.Errorf("authenticator_attachment: %q is not platform or cross-platform", s.cfg.AuthenticatorAttachment)
	}
	if s.cfg.FriendlyName == "" {
		s.cfg.FriendlyName = "Passkey"
	}
	if err := s.cfg.RelyingPartyConfig.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *authenticatorWebAuthn) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	user, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound) || err == nil && user == nil:
		return nil, nil // Submit refuses
	case err != nil:
		return nil, err
	}
	opts, ok := currentCeremony(sc, user.ID)
	if !ok {
		wa, err := s.cfg.relyingParty(sc, s.uv)
		if err != nil {
			return nil, err
		}
		w := newWAUser(user)
		// The user's passkeys are excluded, so an authenticator that already
		// holds one says so instead of making a second.
		creation, session, err := wa.BeginRegistration(w,
			webauthn.WithExclusions(w.descriptors()),
			webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
				AuthenticatorAttachment: protocol.AuthenticatorAttachment(s.cfg.AuthenticatorAttachment),
				UserVerification:        s.uv,
			}),
			webauthn.WithResidentKeyRequirement(s.rk))
		if err != nil {
			return nil, fmt.Errorf("beginning passkey registration: %w", err)
		}
		if opts, err = saveCeremony(sc, creation, session); err != nil {
			return nil, err
		}
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{{Key: credentialField, Type: flowengine.FieldHidden, Label: "Passkey", Required: true}},
		Data:   map[string]any{"options": opts},
	}, nil
}

func (s *authenticatorWebAuthn) Submit(ctx context.Context, sc *flowengine.StageContext, a flowengine.Answer) (flowengine.Outcome, error) {
	user, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound) || err == nil && user == nil:
		return flowengine.Deny("There is no account to add a passkey to; sign in first."), nil
	case err != nil:
		return flowengine.Outcome{}, err
	}
	raw := strings.TrimSpace(a[credentialField])
	if raw == "" {
		return waInvalid("Create a passkey with the button."), nil
	}
	session, fresh := takeCeremony(sc)
	if !fresh {
		return waInvalid(waStale), nil
	}
	var parsed *protocol.ParsedCredentialCreationData
	if err := guardParse(func() (err error) {
		parsed, err = protocol.ParseCredentialCreationResponseBytes([]byte(raw))
		return err
	}); err != nil {
		return waInvalid(waUnreadable), nil
	}
	wa, err := s.cfg.relyingParty(sc, s.uv)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if msg := checkClientData(parsed.Response.CollectedClientData, session, wa); msg != "" {
		return waInvalid(msg), nil
	}
	w := newWAUser(user)
	if w.owns(parsed.RawID) {
		return waInvalid(waDuplicate), nil
	}
	var cred *webauthn.Credential
	if err := guardParse(func() (err error) {
		cred, err = wa.CreateCredential(w, *session, parsed)
		return err
	}); err != nil {
		return waInvalid(waNotVerified), nil
	}
	stored, err := json.Marshal(cred)
	if err != nil {
		return flowengine.Outcome{}, fmt.Errorf("encoding passkey: %w", err)
	}
	now := sc.Clock.Now()
	_, err = flowengine.ModifyUser(ctx, sc.Store, user.ID, func(u *flowengine.User) error {
		// Checked again on the record written: a parallel answer may have
		// registered the same passkey meanwhile.
		for _, d := range u.DevicesOf(flowengine.DeviceWebAuthn) {
			if d.WebAuthn != nil && bytes.Equal(d.WebAuthn.CredentialID, cred.ID) {
				return errDuplicatePasskey
			}
		}
		u.Devices = append(u.Devices, flowengine.Device{
			ID: flowengine.NewID(), Class: flowengine.DeviceWebAuthn, Name: s.cfg.FriendlyName, CreatedAt: now,
			WebAuthn: &flowengine.WebAuthnDevice{CredentialID: cred.ID, Credential: stored},
		})
		return nil
	})
	switch {
	case errors.Is(err, errDuplicatePasskey):
		return waInvalid(waDuplicate), nil
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny("This account no longer exists."), nil
	case err != nil:
		return flowengine.Outcome{}, fmt.Errorf("saving passkey: %w", err)
	}
	sc.AddAuthMethod(flowengine.MethodWebAuthn)
	return flowengine.Continue(), nil
}

// waDuplicate refuses a passkey the user already has.
const waDuplicate = "This passkey is already registered to your account."

var errDuplicatePasskey = errors.New("passkey already registered")

// waInvalid refuses a passkey answer; the message goes on the credential field.
func waInvalid(msg string) flowengine.Outcome {
	return flowengine.Invalid(map[string][]string{credentialField: {msg}})
}

// guardParse runs f, turning a panic into an error: the answers it parses come
// from anyone, and a parser bug must refuse the answer, not crash the request.
func guardParse(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("webauthn: %v", r)
		}
	}()
	return f()
}

// Interface guard.
var _ flowengine.Stage = (*authenticatorWebAuthn)(nil)
