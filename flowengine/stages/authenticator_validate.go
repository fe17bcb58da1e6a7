package stages

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("authenticator_validate", newAuthenticatorValidate) }

// NotConfiguredAction says what authenticator_validate does for a user with
// no device of an allowed class.
type NotConfiguredAction string

// Not-configured actions, with authentik's names.
const (
	// NotConfiguredSkip lets the user through without a second factor.
	NotConfiguredSkip NotConfiguredAction = "skip"
	// NotConfiguredDeny ends the flow.
	NotConfiguredDeny NotConfiguredAction = "deny"
	// NotConfiguredConfigure runs a setup stage (configuration_stages) next.
	NotConfiguredConfigure NotConfiguredAction = "configure"
)

// AuthenticatorValidateConfig configures the second-factor (or passwordless)
// check.
type AuthenticatorValidateConfig struct {
	// DeviceClasses are the kinds of device accepted: totp, static, webauthn
	// (default all three). webauthn alone allows passwordless sign-in: without
	// a pending user, a discoverable passkey names its account.
	DeviceClasses []string `json:"device_classes,omitempty"`
	// NotConfiguredAction is what happens to a user with no device of an
	// accepted class: skip, deny or configure (default skip).
	NotConfiguredAction NotConfiguredAction `json:"not_configured_action,omitempty"`
	// ConfigurationStages are the setup stages offered with configure (one is
	// run at once; with several the user picks). Required with configure.
	ConfigurationStages []string `json:"configuration_stages,omitempty"`
	// WebAuthnUserVerification asks the passkey to check who holds it:
	// required, preferred or discouraged (default preferred).
	WebAuthnUserVerification string `json:"webauthn_user_verification,omitempty"`
	RelyingPartyConfig
	// FailedAttemptsBeforeCancel ends the flow after this many wrong answers
	// (default 5); the user starts over.
	FailedAttemptsBeforeCancel *int `json:"failed_attempts_before_cancel,omitempty"`
}

// Answer keys besides credentialField.
const (
	valCodeField  = "code"
	valStageField = "stage"
)

// Messages of authenticator_validate.
const (
	valNoAccount      = "There is no account to verify; start again."
	valLocked         = "Too many failed attempts. Try again later."
	valNotOwned       = "This passkey is not registered for this account."
	valUnknownPasskey = "This passkey is not registered here."
	valDisabled       = "This account cannot sign in."
	valClone          = "This passkey's signature counter went backwards; it may have been copied."
	valGone           = "This passkey was removed. Try another way."
	valUnusable       = "The passkey of this account cannot be read; ask an administrator."
	valNotConfigured  = "This account has no second factor set up that this sign-in accepts."
)

type authenticatorValidate struct {
	cfg          AuthenticatorValidateConfig
	classes      []string // accepted, in flowengine.DeviceClasses order
	passwordless bool
	uv           protocol.UserVerificationRequirement
	maxFailures  int
}

func newAuthenticatorValidate(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &authenticatorValidate{maxFailures: 5}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	c := &s.cfg
	if c.DeviceClasses != nil && len(c.DeviceClasses) == 0 {
		return nil, errors.New("device_classes: list at least one of totp, static, webauthn")
	}
	for _, dc := range c.DeviceClasses {
		if !slices.Contains(flowengine.DeviceClasses, dc) {
			return nil, fmt.Errorf("device_classes: %q is not totp, static or webauthn", dc)
		}
	}
	for _, dc := range flowengine.DeviceClasses {
		if c.DeviceClasses == nil || slices.Contains(c.DeviceClasses, dc) {
			s.classes = append(s.classes, dc)
		}
	}
	s.passwordless = len(s.classes) == 1 && s.classes[0] == flowengine.DeviceWebAuthn
	switch c.NotConfiguredAction {
	case "":
		c.NotConfiguredAction = NotConfiguredSkip
	case NotConfiguredSkip, NotConfiguredDeny, NotConfiguredConfigure:
	default:
		return nil, fmt.Errorf("not_configured_action: %q is not skip, deny or configure", c.NotConfiguredAction)
	}
	if c.NotConfiguredAction == NotConfiguredConfigure && len(c.ConfigurationStages) == 0 {
		return nil, errors.New("configuration_stages: not_configured_action configure needs at least one stage")
	}
	for _, name := range c.ConfigurationStages {
		if name == "" || name == def.Name {
			return nil, fmt.Errorf("configuration_stages: %q cannot be a configuration stage", name)
		}
	}
	var err error
	if s.uv, err = userVerification("webauthn_user_verification", c.WebAuthnUserVerification); err != nil {
		return nil, err
	}
	if err := c.RelyingPartyConfig.check(); err != nil {
		return nil, err
	}
	if n := c.FailedAttemptsBeforeCancel; n != nil {
		if *n < 1 {
			return nil, errors.New("failed_attempts_before_cancel must be at least 1")
		}
		s.maxFailures = *n
	}
	return s, nil
}

// StageNames implements flowengine.StageUser: a configuration stage that does
// not exist fails the config load.
func (s *authenticatorValidate) StageNames() []string { return slices.Clone(s.cfg.ConfigurationStages) }

// validateView is what the stage can ask of the flow's user right now.
type validateView struct {
	user *flowengine.User // nil: passwordless, the passkey names the user
	// outcome, when set, is the stage's whole answer (no challenge).
	outcome *flowengine.Outcome
	// pick: the user chooses a configuration stage.
	pick bool
	// classes the user has a device of, among the accepted ones.
	classes  []string
	code     bool // a totp or static device: the code field
	webauthn *waUser
}

// view works out what to ask. With submit set it also acts on a user with
// nothing configured (inserting the one configuration stage); the challenge
// only looks.
func (s *authenticatorValidate) view(ctx context.Context, sc *flowengine.StageContext, submit bool) (*validateView, error) {
	user, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return valOutcome(flowengine.Deny("This account no longer exists.")), nil
	case err != nil:
		return nil, err
	case user == nil && s.passwordless:
		// No user yet: any passkey of this site may answer (webauthn is set
		// only to ask for one; it holds no user).
		return &validateView{classes: []string{flowengine.DeviceWebAuthn}, webauthn: &waUser{}}, nil
	case user == nil:
		return valOutcome(flowengine.Deny(valNoAccount)), nil
	}
	v := &validateView{user: user}
	configured := false
	for _, class := range s.classes {
		if len(user.DevicesOf(class)) == 0 {
			continue
		}
		configured = true
		switch class {
		case flowengine.DeviceTOTP, flowengine.DeviceStatic:
			v.code = true
		case flowengine.DeviceWebAuthn:
			w := newWAUser(user)
			if len(w.creds) == 0 {
				continue // no passkey that decodes
			}
			v.webauthn = w
		}
		v.classes = append(v.classes, class)
	}
	switch {
	case configured && len(v.classes) == 0:
		// Configured, but nothing the stage can check: never treated as
		// "not configured", which could skip the second factor.
		return valOutcome(flowengine.Deny(valUnusable)), nil
	case configured:
		return v, nil
	}
	switch s.cfg.NotConfiguredAction {
	case NotConfiguredDeny:
		return valOutcome(flowengine.Deny(valNotConfigured)), nil
	case NotConfiguredConfigure:
		if len(s.cfg.ConfigurationStages) == 1 {
			if submit {
				if err := sc.InsertStages(s.cfg.ConfigurationStages[0]); err != nil {
					return nil, err
				}
			}
			return valOutcome(flowengine.Continue()), nil
		}
		return &validateView{user: user, pick: true}, nil
	}
	return valOutcome(flowengine.Continue()), nil
}

func valOutcome(o flowengine.Outcome) *validateView { return &validateView{outcome: &o} }

func (s *authenticatorValidate) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	v, err := s.view(ctx, sc, false)
	if err != nil || v.outcome != nil {
		return nil, err
	}
	if v.pick {
		return &flowengine.Challenge{Fields: []flowengine.Field{s.stageChoice(sc)}}, nil
	}
	ch := &flowengine.Challenge{Data: map[string]any{"device_classes": slices.Clone(v.classes)}}
	if v.code {
		ch.Fields = append(ch.Fields, flowengine.Field{
			Key: valCodeField, Type: flowengine.FieldCode, Label: "Code", Required: v.webauthn == nil,
			Autocomplete: "one-time-code", SubText: valCodeHelp(v.classes),
		})
	}
	if v.webauthn != nil {
		opts, err := s.assertionOptions(sc, v)
		if err != nil {
			return nil, err
		}
		ch.Fields = append(ch.Fields, flowengine.Field{
			Key: credentialField, Type: flowengine.FieldHidden, Label: "Passkey", Required: !v.code,
		})
		ch.Data["options"] = opts
	}
	return ch, nil
}

// valCodeHelp says which codes the code field takes.
func valCodeHelp(classes []string) string {
	totp, static := slices.Contains(classes, flowengine.DeviceTOTP), slices.Contains(classes, flowengine.DeviceStatic)
	switch {
	case totp && static:
		return "The code from your authenticator app, or a recovery code."
	case static:
		return "One of your recovery codes."
	}
	return "The code from your authenticator app."
}

// stageChoice asks which configuration stage to run.
func (s *authenticatorValidate) stageChoice(sc *flowengine.StageContext) flowengine.Field {
	f := flowengine.Field{Key: valStageField, Type: flowengine.FieldChoice, Label: "Set up a second factor", Required: true,
		Presentation: flowengine.PresentationRadio}
	for _, name := range s.cfg.ConfigurationStages {
		f.Choices = append(f.Choices, flowengine.Choice{Value: name, Label: valSetupLabel(name, sc.StageTypeOf(name))})
	}
	return f
}

// valSetupLabel names a setup stage for the visitor by its type.
func valSetupLabel(name, typ string) string {
	switch typ {
	case "authenticator_totp":
		return "Authenticator app"
	case "authenticator_static":
		return "Recovery codes"
	case "authenticator_webauthn":
		return "Passkey or security key"
	}
	return name
}

// assertionOptions returns the options of the assertion in progress, or
// begins one: for the user's passkeys, or discoverable (passwordless).
func (s *authenticatorValidate) assertionOptions(sc *flowengine.StageContext, v *validateView) (any, error) {
	userID := ""
	if v.user != nil {
		userID = v.user.ID
	}
	if opts, ok := currentCeremony(sc, userID); ok {
		return opts, nil
	}
	wa, err := s.cfg.relyingParty(sc, s.uv)
	if err != nil {
		return nil, err
	}
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
	)
	if v.user == nil {
		assertion, session, err = wa.BeginDiscoverableLogin()
	} else {
		assertion, session, err = wa.BeginLogin(v.webauthn)
	}
	if err != nil {
		return nil, fmt.Errorf("beginning passkey sign-in: %w", err)
	}
	return saveCeremony(sc, assertion, session)
}

func (s *authenticatorValidate) Submit(ctx context.Context, sc *flowengine.StageContext, a flowengine.Answer) (flowengine.Outcome, error) {
	v, err := s.view(ctx, sc, true)
	switch {
	case err != nil:
		return flowengine.Outcome{}, err
	case v.outcome != nil:
		return *v.outcome, nil
	case v.pick:
		name := a[valStageField]
		if !slices.Contains(s.cfg.ConfigurationStages, name) {
			return flowengine.Invalid(map[string][]string{valStageField: {"Choose one of the options."}}), nil
		}
		if err := sc.InsertStages(name); err != nil {
			return flowengine.Outcome{}, err
		}
		return flowengine.Continue(), nil
	}
	if cred := strings.TrimSpace(a[credentialField]); cred != "" && v.webauthn != nil {
		return s.submitWebAuthn(ctx, sc, v.user, cred)
	}
	if code := strings.TrimSpace(a[valCodeField]); code != "" && v.code {
		return s.submitCode(ctx, sc, v, code)
	}
	if v.code {
		return flowengine.Invalid(map[string][]string{valCodeField: {"Enter a code."}}), nil
	}
	return waInvalid("Use your passkey with the button."), nil
}

// submitCode checks a TOTP or recovery code, regulated like a password: the
// attempt is reserved before the check, so parallel guesses cannot all pass
// the lock check first, and a lock refuses even the right code.
func (s *authenticatorValidate) submitCode(ctx context.Context, sc *flowengine.StageContext, v *validateView, code string) (flowengine.Outcome, error) {
	key := flowengine.RegulationKey(v.user, "")
	if ok, err := s.reserve(ctx, sc, key); err != nil || !ok {
		return valLockedOutcome(), err
	}
	var (
		dev    *flowengine.Device
		method string
		err    error
	)
	if slices.Contains(v.classes, flowengine.DeviceTOTP) {
		if dev, err = checkTOTP(ctx, sc, v.user.ID, code); err != nil {
			return flowengine.Outcome{}, err
		}
		method = flowengine.MethodOTP
	}
	if dev == nil && slices.Contains(v.classes, flowengine.DeviceStatic) {
		if dev, err = checkStatic(ctx, sc, v.user.ID, code); err != nil {
			return flowengine.Outcome{}, err
		}
		method = flowengine.MethodStatic
	}
	if dev == nil {
		return s.failed(ctx, sc, key, valCodeField, "Invalid code.")
	}
	return s.succeeded(ctx, sc, key, method)
}

// submitWebAuthn checks a passkey assertion: for the pending user, or, with
// user nil (passwordless), for the account the passkey's user handle names.
// Every answer spends the challenge it answers.
func (s *authenticatorValidate) submitWebAuthn(ctx context.Context, sc *flowengine.StageContext, user *flowengine.User, raw string) (flowengine.Outcome, error) {
	session, fresh := takeCeremony(sc)
	var parsed *protocol.ParsedCredentialAssertionData
	parseErr := guardParse(func() (err error) {
		parsed, err = protocol.ParseCredentialRequestResponseBytes([]byte(raw))
		return err
	})
	passwordless := user == nil
	if passwordless && parseErr == nil && len(parsed.Response.UserHandle) > 0 {
		// The passkey names its account; failures from here count against it,
		// as a password's do against the name typed.
		u, err := sc.Store.GetUser(ctx, string(parsed.Response.UserHandle))
		switch {
		case err == nil:
			user = u
		case !errors.Is(err, flowengine.ErrNotFound):
			return flowengine.Outcome{}, fmt.Errorf("loading passkey user: %w", err)
		}
	}
	key := ""
	if user != nil {
		key = flowengine.RegulationKey(user, "")
	}
	if ok, err := s.reserve(ctx, sc, key); err != nil || !ok {
		return valLockedOutcome(), err
	}
	fail := func(msg string) (flowengine.Outcome, error) { return s.failed(ctx, sc, key, credentialField, msg) }
	switch {
	case !fresh:
		return fail(waStale)
	case parseErr != nil:
		return fail(waUnreadable)
	case user == nil:
		return fail(valUnknownPasskey)
	case !user.IsActive:
		return fail(valDisabled)
	}
	wa, err := s.cfg.relyingParty(sc, s.uv)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if msg := checkClientData(parsed.Response.CollectedClientData, session, wa); msg != "" {
		return fail(msg)
	}
	w := newWAUser(user)
	if !w.owns(parsed.RawID) {
		if passwordless {
			return fail(valUnknownPasskey)
		}
		return fail(valNotOwned)
	}
	var cred *webauthn.Credential
	err = guardParse(func() (err error) {
		if passwordless {
			_, cred, err = wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return w, nil }, *session, parsed)
		} else {
			cred, err = wa.ValidateLogin(w, *session, parsed)
		}
		return err
	})
	if err != nil {
		return fail(waNotVerified)
	}
	if cred.Authenticator.CloneWarning {
		return fail(valClone)
	}
	switch err := recordWebAuthnUse(ctx, sc, user.ID, cred); {
	case errors.Is(err, errCredentialGone):
		return fail(valGone)
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny("This account no longer exists."), nil
	case err != nil:
		return flowengine.Outcome{}, fmt.Errorf("recording passkey use: %w", err)
	}
	if passwordless {
		sc.SetPendingUser(user)
	}
	return s.succeeded(ctx, sc, key, flowengine.MethodWebAuthn)
}

// reserve counts an attempt before it is checked; false means locked. key ""
// (a passkey naming no account) regulates by client IP only.
func (s *authenticatorValidate) reserve(ctx context.Context, sc *flowengine.StageContext, key string) (bool, error) {
	reg := sc.Services.Regulator
	if reg == nil {
		return true, nil
	}
	ok, err := reg.Reserve(ctx, key, valClientIP(sc))
	if err != nil {
		return false, fmt.Errorf("checking login throttle: %w", err)
	}
	return ok, nil
}

func (s *authenticatorValidate) failed(ctx context.Context, sc *flowengine.StageContext, key, field, msg string) (flowengine.Outcome, error) {
	if reg := sc.Services.Regulator; reg != nil {
		if err := reg.Failed(ctx, key, valClientIP(sc)); err != nil {
			return flowengine.Outcome{}, fmt.Errorf("recording failed login: %w", err)
		}
	}
	failures := intState(sc.State[stateFailures]) + 1
	sc.State[stateFailures] = failures
	if failures >= s.maxFailures {
		return flowengine.Cancel("Too many failed attempts. Start again."), nil
	}
	return flowengine.Invalid(map[string][]string{field: {msg}}), nil
}

func (s *authenticatorValidate) succeeded(ctx context.Context, sc *flowengine.StageContext, key, method string) (flowengine.Outcome, error) {
	if reg := sc.Services.Regulator; reg != nil && key != "" {
		if err := reg.Succeeded(ctx, key); err != nil {
			return flowengine.Outcome{}, fmt.Errorf("clearing login throttle: %w", err)
		}
	}
	delete(sc.State, stateFailures)
	sc.AddAuthMethod(method)
	return flowengine.Continue(), nil
}

// valLockedOutcome keeps the challenge and says why; the same for every account.
func valLockedOutcome() flowengine.Outcome { return flowengine.Invalid(nil, valLocked) }

func valClientIP(sc *flowengine.StageContext) string {
	if sc.Request == nil {
		return ""
	}
	return sc.Request.ClientIP
}

// Interactive: the stage asks unless the user has nothing to check and it
// skips; that is only known once the user is.
func (*authenticatorValidate) Interactive([]flowengine.Stage) bool { return true }

// Interface guards.
var (
	_ flowengine.StageUser   = (*authenticatorValidate)(nil)
	_ flowengine.Interactive = (*authenticatorValidate)(nil)
)
