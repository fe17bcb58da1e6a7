package stages

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("identification", newIdentification) }

// IdentificationConfig configures the identification stage.
type IdentificationConfig struct {
	// UserFields are the fields a user may identify with: username, email
	// (default both).
	UserFields []string `json:"user_fields"`
	// PretendUserExists continues to the next stage for an unknown user, so that
	// the flow does not reveal which accounts exist (default true).
	PretendUserExists *bool `json:"pretend_user_exists"`
	// CaseInsensitiveMatching is always on; accepted for authentik exports.
	CaseInsensitiveMatching *bool `json:"case_insensitive_matching"`
	// ShowMatchedUser is accepted for authentik exports and has no effect.
	ShowMatchedUser *bool `json:"show_matched_user"`
	// EnrollmentFlow and RecoveryFlow are slugs linked from the page.
	EnrollmentFlow string `json:"enrollment_flow"`
	RecoveryFlow   string `json:"recovery_flow"`
}

type identification struct {
	cfg     IdentificationConfig
	pretend bool
}

func newIdentification(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &identification{pretend: true}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	if len(s.cfg.UserFields) == 0 {
		s.cfg.UserFields = []string{"username", "email"}
	}
	for _, f := range s.cfg.UserFields {
		if f != "username" && f != "email" {
			return nil, fmt.Errorf("user_fields: unknown field %q (want username, email)", f)
		}
	}
	if s.cfg.PretendUserExists != nil {
		s.pretend = *s.cfg.PretendUserExists
	}
	return s, nil
}

func (s *identification) label() string {
	has := func(f string) bool {
		for _, x := range s.cfg.UserFields {
			if x == f {
				return true
			}
		}
		return false
	}
	switch {
	case has("username") && has("email"):
		return "Username or email"
	case has("email"):
		return "Email"
	}
	return "Username"
}

func (s *identification) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	prev, _ := sc.Context[flowengine.CtxPendingUserIdentifier].(string)
	data := map[string]any{"user_fields": s.cfg.UserFields}
	if s.cfg.EnrollmentFlow != "" {
		data["enrollment_flow"] = s.cfg.EnrollmentFlow
	}
	if s.cfg.RecoveryFlow != "" {
		data["recovery_flow"] = s.cfg.RecoveryFlow
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{{
			Key: "uid_field", Type: flowengine.FieldText, Label: s.label(), Required: true,
			Autocomplete: "username", Value: prev,
		}},
		Data: data,
	}, nil
}

func (s *identification) Submit(ctx context.Context, sc *flowengine.StageContext, a flowengine.Answer) (flowengine.Outcome, error) {
	uid := strings.TrimSpace(a["uid_field"])
	user, err := s.find(ctx, sc.Store, uid)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	sc.Context[flowengine.CtxPendingUserIdentifier] = uid
	if user == nil || !user.IsActive {
		if !s.pretend {
			return flowengine.Invalid(map[string][]string{"uid_field": {"Failed to authenticate."}}), nil
		}
		// Go on without a user: the password stage will fail after the same work.
		sc.SetPendingUser(nil)
		return flowengine.Continue(), nil
	}
	sc.SetPendingUser(user)
	return flowengine.Continue(), nil
}

// find looks the identifier up in every configured field, always doing every lookup
// so that the time taken does not depend on which one matches.
func (s *identification) find(ctx context.Context, st flowengine.UserStore, uid string) (*flowengine.User, error) {
	var found *flowengine.User
	for _, f := range s.cfg.UserFields {
		var u *flowengine.User
		var err error
		if f == "email" {
			u, err = st.GetUserByEmail(ctx, uid)
		} else {
			u, err = st.GetUserByUsername(ctx, uid)
		}
		if err != nil && !errors.Is(err, flowengine.ErrNotFound) {
			return nil, fmt.Errorf("looking up user: %w", err)
		}
		if found == nil && u != nil {
			found = u
		}
	}
	return found, nil
}
