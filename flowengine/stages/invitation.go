package stages

import (
	"context"
	"errors"
	"maps"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("invitation", newInvitation) }

// InvitationConfig configures the invitation stage.
type InvitationConfig struct {
	// ContinueFlowWithoutInvitation lets the flow go on without a valid
	// invitation instead of denying it (default false).
	ContinueFlowWithoutInvitation bool `json:"continue_flow_without_invitation,omitempty"`
}

// Where the invitation stage finds its token and records what it accepted.
const (
	// InvitationQuery is the query parameter of an invitation link (authentik's name).
	InvitationQuery = "itoken"
	// CtxInvitationToken carries a token in the plan context (a redirect into
	// this flow keeping the context).
	CtxInvitationToken = "itoken"
	// CtxInvitation is the ID of the invitation the flow was started with.
	CtxInvitation = "invitation"
)

type invitation struct{ cfg InvitationConfig }

func newInvitation(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &invitation{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func (*invitation) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

// Interactive: the token comes with the link; the stage asks nothing.
func (*invitation) Interactive([]flowengine.Stage) bool { return false }

// Submit accepts a live invitation for this flow: its email and fixed data go
// into prompt_data and its ID into the context. A single-use invitation is
// used up here, when the flow starts from it (not when the flow finishes), so
// a link passed on cannot start a second enrollment while the first is under
// way; the execution it started keeps going.
func (s *invitation) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	token, _ := sc.Context[CtxInvitationToken].(string)
	if token == "" && sc.Request != nil {
		token = sc.Request.Query.Get(InvitationQuery)
	}
	now := sc.Clock.Now()
	inv, err := flowengine.GetInvitation(ctx, sc.Store, token, now)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		inv = nil
	case err != nil:
		return flowengine.Outcome{}, err
	}
	// An invitation for another flow opens nothing here: it must not let
	// someone into an enrollment the operator did not invite them to.
	if inv != nil && inv.Flow != sc.Flow.Slug {
		inv = nil
	}
	if inv != nil {
		err := flowengine.UseInvitation(ctx, sc.Store, inv, now)
		switch {
		case errors.Is(err, flowengine.ErrNotFound):
			inv = nil // another request used it up first
		case err != nil:
			return flowengine.Outcome{}, err
		}
	}
	delete(sc.Context, CtxInvitationToken)
	if inv == nil {
		if s.cfg.ContinueFlowWithoutInvitation {
			return flowengine.Continue(), nil
		}
		return flowengine.Deny("An invitation is required."), nil
	}
	data, _ := sc.Context[flowengine.CtxPromptData].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	maps.Copy(data, inv.FixedData)
	if inv.Email != "" {
		data[promptEmail] = inv.Email
	}
	sc.Context[flowengine.CtxPromptData] = data
	sc.Context[CtxInvitation] = inv.ID
	return flowengine.Continue(), nil
}

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = (*invitation)(nil)
