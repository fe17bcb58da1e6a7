package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("user_delete", newUserDelete) }

type userDelete struct{}

func newUserDelete(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg struct{}
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	return userDelete{}, nil
}

func (userDelete) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

// Submit deletes the pending user. The store's DeleteUser removes their
// sessions in the same step; devices and consents do not exist yet (they go
// here when their stages come).
func (userDelete) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	user, err := sc.PendingUser(ctx)
	if errors.Is(err, flowengine.ErrNotFound) || err == nil && user == nil {
		return flowengine.Deny("There is no account to delete."), nil
	}
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if err := sc.Store.DeleteUser(ctx, user.ID); err != nil && !errors.Is(err, flowengine.ErrNotFound) {
		return flowengine.Outcome{}, fmt.Errorf("deleting user: %w", err)
	}
	sc.SetPendingUser(nil)
	if s := sc.Request.Session; s != nil && s.UserID == user.ID {
		// The record is gone with the user; the browser drops its cookie.
		sc.EndSession()
	}
	return flowengine.Continue(), nil
}

// Interactive: deleting the account needs no page (a consent or password
// stage before it asks).
func (userDelete) Interactive([]flowengine.Stage) bool { return false }

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = userDelete{}
