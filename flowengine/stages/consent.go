package stages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("consent", newConsent) }

// ConsentMode says whether and for how long a given consent is remembered.
type ConsentMode string

// Consent modes, with authentik's names.
const (
	// AlwaysRequire asks every time the stage runs.
	AlwaysRequire ConsentMode = "always_require"
	// Permanent asks once per user, flow and stage.
	Permanent ConsentMode = "permanent"
	// Expiring asks again once consent_expire_in has passed since the last consent.
	Expiring ConsentMode = "expiring"
)

// ConsentConfig configures the consent stage.
type ConsentConfig struct {
	// Mode is always_require, permanent or expiring (default always_require).
	Mode ConsentMode `json:"mode,omitempty"`
	// ConsentExpireIn is how long an expiring consent lasts, as "720h" or
	// authentik's "weeks=4" (required with mode expiring).
	ConsentExpireIn string `json:"consent_expire_in,omitempty"`
	// Permissions are shown to the user as what they agree to (default none).
	Permissions []string `json:"permissions,omitempty"`
}

// consentField is the challenge's checkbox and the answer key.
const consentField = "consent"

// consentAttrPrefix starts the user attribute that remembers a consent:
// flowgate.consent.<flow>.<stage> = RFC 3339 time it was given. The prefix is
// reserved: a prompt must not declare an attributes.flowgate.* field, or a user
// could write their own consent.
const consentAttrPrefix = "flowgate.consent."

type consent struct {
	mode        ConsentMode
	expireIn    time.Duration
	permissions []string
}

func newConsent(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg ConsentConfig
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	s := &consent{mode: cfg.Mode, permissions: slices.Clone(cfg.Permissions)}
	if s.permissions == nil {
		s.permissions = []string{}
	}
	switch s.mode {
	case "":
		s.mode = AlwaysRequire
	case AlwaysRequire, Permanent, Expiring:
	default:
		return nil, fmt.Errorf("mode: %q is not always_require, permanent or expiring", cfg.Mode)
	}
	d, err := flowengine.ParseDuration(cfg.ConsentExpireIn)
	if err != nil {
		return nil, fmt.Errorf("consent_expire_in: %w", err)
	}
	switch {
	case s.mode == Expiring && d <= 0:
		return nil, errors.New("consent_expire_in: mode expiring needs a positive duration")
	case s.mode != Expiring && cfg.ConsentExpireIn != "":
		return nil, errors.New("consent_expire_in: applies only to mode expiring")
	}
	s.expireIn = d
	return s, nil
}

func (s *consent) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	if ok, err := s.remembered(ctx, sc); err != nil || ok {
		return nil, err
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{{Key: consentField, Type: flowengine.FieldCheckbox, Label: "I agree", Required: true}},
		Data:   map[string]any{"permissions": slices.Clone(s.permissions)},
	}, nil
}

func (s *consent) Submit(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (flowengine.Outcome, error) {
	ok, err := s.remembered(ctx, sc)
	if err != nil || ok {
		return flowengine.Continue(), err
	}
	if !answer.Bool(consentField) {
		return flowengine.Invalid(map[string][]string{consentField: {"You must agree to continue."}}), nil
	}
	if s.mode == AlwaysRequire {
		return flowengine.Continue(), nil
	}
	return s.remember(ctx, sc)
}

// Interactive: the stage may ask; whether a remembered consent spares the page
// is only known once the pending user is.
func (*consent) Interactive([]flowengine.Stage) bool { return true }

func consentKey(sc *flowengine.StageContext) string {
	return consentAttrPrefix + sc.Flow.Slug + "." + sc.StageName
}

// remembered tells whether the pending user's consent to this stage still
// holds. Without a pending user nothing is remembered (always_require).
func (s *consent) remembered(ctx context.Context, sc *flowengine.StageContext) (bool, error) {
	if s.mode == AlwaysRequire {
		return false, nil
	}
	u, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case u == nil:
		return false, nil
	}
	raw, _ := u.Attributes[consentKey(sc)].(string)
	given, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return false, nil
	}
	if s.mode == Permanent {
		return true, nil
	}
	return sc.Clock.Now().Before(given.Add(s.expireIn)), nil
}

// remember writes the consent onto the pending user, only over the record just
// read so a change made meanwhile (a deactivation, a new password) is never
// written back over. Failing to remember after a few tries does not undo the
// consent just given: the user is asked again next time.
func (s *consent) remember(ctx context.Context, sc *flowengine.StageContext) (flowengine.Outcome, error) {
	pending, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny("This account no longer exists."), nil
	case err != nil:
		return flowengine.Outcome{}, err
	case pending == nil:
		return flowengine.Continue(), nil
	}
	now := sc.Clock.Now().UTC().Format(time.RFC3339)
	for range 3 {
		// A fresh read by username: reads by ID may come from the store's
		// short-lived cache, and a write compared against a stale copy would
		// only be refused.
		prev, err := sc.Store.GetUserByUsername(ctx, pending.Username)
		switch {
		case errors.Is(err, flowengine.ErrNotFound) || err == nil && prev.ID != pending.ID:
			prev = pending
		case err != nil:
			return flowengine.Outcome{}, fmt.Errorf("loading user: %w", err)
		}
		u := *prev
		u.Groups = slices.Clone(prev.Groups)
		u.Attributes = maps.Clone(prev.Attributes)
		if u.Attributes == nil {
			u.Attributes = map[string]any{}
		}
		u.Attributes[consentKey(sc)] = now
		err = sc.Store.UpdateUserIf(ctx, &u, prev)
		switch {
		case err == nil:
			return flowengine.Continue(), nil
		case errors.Is(err, flowengine.ErrNotFound):
			return flowengine.Deny("This account no longer exists."), nil
		case !errors.Is(err, flowengine.ErrChanged):
			return flowengine.Outcome{}, fmt.Errorf("remembering consent: %w", err)
		}
		pending = prev
	}
	return flowengine.Continue(), nil
}

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = (*consent)(nil)
