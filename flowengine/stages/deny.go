package stages

import (
	"context"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("deny", newDeny) }

// DenyConfig configures the deny stage.
type DenyConfig struct {
	// DenyMessage is shown to the user (default "Access denied.").
	DenyMessage string `json:"deny_message"`
}

type deny struct{ message string }

func newDeny(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg DenyConfig
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	if cfg.DenyMessage == "" {
		cfg.DenyMessage = "Access denied."
	}
	return deny{message: cfg.DenyMessage}, nil
}

func (deny) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

func (d deny) Submit(context.Context, *flowengine.StageContext, flowengine.Answer) (flowengine.Outcome, error) {
	return flowengine.Deny(d.message), nil
}

// Interactive: a denial ends the flow on the denied page, not a step.
func (deny) Interactive([]flowengine.Stage) bool { return false }

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = deny{}
