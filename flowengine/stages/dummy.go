package stages

import (
	"context"
	"errors"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("dummy", newDummy) }

// DummyConfig configures the dummy stage, a page with only a Continue button
// (useful for testing flows).
type DummyConfig struct {
	// ThrowError makes the stage fail, to test error handling (default false).
	ThrowError bool `json:"throw_error"`
}

type dummy struct{ cfg DummyConfig }

func newDummy(def flowengine.StageDef) (flowengine.Stage, error) {
	d := dummy{}
	if err := flowengine.DecodeConfig(def.Config, &d.cfg); err != nil {
		return nil, err
	}
	return d, nil
}

func (dummy) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return &flowengine.Challenge{}, nil
}

func (d dummy) Submit(context.Context, *flowengine.StageContext, flowengine.Answer) (flowengine.Outcome, error) {
	if d.cfg.ThrowError {
		return flowengine.Outcome{}, errors.New("dummy stage configured to fail")
	}
	return flowengine.Continue(), nil
}

// Interactive: the dummy stage shows its page (a Continue button), so it counts
// as a step.
func (dummy) Interactive([]flowengine.Stage) bool { return true }

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = dummy{}
