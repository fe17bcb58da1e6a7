package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("user_logout", newUserLogout) }

type userLogout struct{}

func newUserLogout(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg struct{}
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	return userLogout{}, nil
}

func (userLogout) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

// Submit deletes the caller's server-side session, so a replayed cookie is refused.
func (userLogout) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	if s := sc.Request.Session; s != nil {
		if err := sc.Store.DeleteSession(ctx, s.ID); err != nil && !errors.Is(err, flowengine.ErrNotFound) {
			return flowengine.Outcome{}, fmt.Errorf("ending session: %w", err)
		}
		ev := flowengine.Event{Kind: flowengine.EventLogout, UserID: s.UserID, Result: "success"}
		if u := sc.Request.User; u != nil {
			ev.Username = u.Username
		}
		sc.Report(ev)
	}
	sc.SetPendingUser(nil)
	sc.EndSession()
	return flowengine.Continue(), nil
}

// Interactive: signing out needs no page.
func (userLogout) Interactive([]flowengine.Stage) bool { return false }

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = userLogout{}
