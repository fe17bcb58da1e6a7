package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("password", newPassword) }

// PasswordConfig configures the password stage.
type PasswordConfig struct {
	// FailedAttemptsBeforeCancel ends the flow after this many wrong passwords
	// (default 5); the user starts over.
	FailedAttemptsBeforeCancel *int `json:"failed_attempts_before_cancel"`
	// Backends is accepted for authentik exports; flowgate checks its own store.
	Backends []string `json:"backends"`
	// AllowShowPassword shows a toggle to reveal the password (default false).
	AllowShowPassword bool `json:"allow_show_password"`
	// ConfigureFlow is accepted for authentik exports and has no effect.
	ConfigureFlow string `json:"configure_flow"`
}

type password struct {
	maxFailures int
	cfg         PasswordConfig
}

const stateFailures = "failures"

func newPassword(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &password{maxFailures: 5}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	if n := s.cfg.FailedAttemptsBeforeCancel; n != nil {
		if *n < 1 {
			return nil, fmt.Errorf("failed_attempts_before_cancel must be at least 1")
		}
		s.maxFailures = *n
	}
	return s, nil
}

func (s *password) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	fields := []flowengine.Field{{
		Key: "password", Type: flowengine.FieldPassword, Label: "Password", Required: true,
		Autocomplete: "current-password",
	}}
	if rememberMeAhead(sc) {
		// Asked here rather than on a page of its own after the password.
		fields = append(fields, rememberMeField())
	}
	return &flowengine.Challenge{
		Fields: fields,
		// What the user typed at identification, so they see who they sign in as;
		// it reveals nothing they did not enter themselves.
		Data: map[string]any{"allow_show_password": s.cfg.AllowShowPassword, "user": identifierOf(sc)},
	}, nil
}

// rememberMeAhead reports whether a user_login planned after this stage offers
// "Stay signed in": the password page then asks it, and user_login reads the
// answer from the plan context.
func rememberMeAhead(sc *flowengine.StageContext) bool {
	for _, st := range sc.Later() {
		if l, ok := st.(*userLogin); ok && l.remember > 0 {
			return true
		}
	}
	return false
}

func (s *password) Submit(ctx context.Context, sc *flowengine.StageContext, a flowengine.Answer) (flowengine.Outcome, error) {
	identifier, _ := sc.Context[flowengine.CtxPendingUserIdentifier].(string)
	// A flood of guesses must not take every core and gigabytes of memory:
	// hashing has a bounded number of slots and a short queue. The slot is taken
	// first, before the user is even loaded, so a busy answer comes as fast for
	// a known name as for an unknown one, and before the attempt is reserved, so
	// a busy attempt counts against no one and changes nothing.
	release, err := sc.Services.Hashes.Acquire(ctx)
	if err != nil {
		sc.Report(busyAttempt(sc, identifier))
		return flowengine.Outcome{}, err
	}
	defer release()
	user, err := sc.PendingUser(ctx)
	if err != nil && !errors.Is(err, flowengine.ErrNotFound) {
		return flowengine.Outcome{}, err
	}
	// One counter per account whatever alias was typed, reserved before hashing
	// so that parallel guesses cannot all pass the lock check first.
	key := flowengine.RegulationKey(user, identifier)
	reg := sc.Services.Regulator
	if reg != nil {
		allowed, err := reg.Reserve(ctx, key, sc.Request.ClientIP)
		if err != nil {
			return flowengine.Outcome{}, fmt.Errorf("checking login throttle: %w", err)
		}
		if !allowed {
			release()
			sc.Report(attempt(user, identifier, "locked"))
			// Same message for known and unknown users, and the right password is refused too.
			return flowengine.Invalid(nil, "Too many failed attempts. Try again later."), nil
		}
	}
	ok := false
	if user != nil && user.IsActive && user.PasswordHash != "" {
		ok, err = flowengine.VerifyPassword(user.PasswordHash, a["password"])
		if err != nil {
			// A hash we cannot read must not lock out silently nor let anyone in.
			ok = false
		}
	} else {
		// Compare against a dummy hash so unknown users take as long as known ones.
		flowengine.DummyVerify(a["password"])
	}
	if ok {
		if reg != nil {
			if err := reg.Succeeded(ctx, key); err != nil {
				return flowengine.Outcome{}, fmt.Errorf("clearing login throttle: %w", err)
			}
		}
		delete(sc.State, stateFailures)
		if rememberMeAhead(sc) {
			sc.Context[flowengine.CtxRememberMe] = a.Bool("remember_me")
		}
		sc.AddAuthMethod(flowengine.MethodPassword)
		sc.Report(attempt(user, identifier, "success"))
		if !sc.Services.KeepHashes && flowengine.NeedsRehash(user.PasswordHash) {
			upgradeHash(ctx, sc, user, a["password"]) // still in the hashing slot
		}
		return flowengine.Continue(), nil
	}
	release() // nothing more to hash: free the slot before the store writes
	if reg != nil {
		if err := reg.Failed(ctx, key, sc.Request.ClientIP); err != nil {
			return flowengine.Outcome{}, fmt.Errorf("recording failed login: %w", err)
		}
	}
	sc.Report(attempt(user, identifier, "failure"))
	failures := intState(sc.State[stateFailures]) + 1
	sc.State[stateFailures] = failures
	if failures >= s.maxFailures {
		return flowengine.Cancel("Too many failed attempts. Start again."), nil
	}
	return flowengine.Invalid(map[string][]string{"password": {"Invalid password."}}), nil
}

// upgradeHash moves the account to the default hash, so that it no longer costs
// more (or less) to try than an unknown name; best effort, the login does not
// depend on it. user is the record the password was verified against. The new
// hash goes onto a fresh read of the account, only while that still holds the
// hash just verified, and only if nothing changed since the read
// (UpdateUserIf): an operator's new password or deactivation landing meanwhile
// is never written back over, which would restore the old password or
// reactivate the account.
func upgradeHash(ctx context.Context, sc *flowengine.StageContext, user *flowengine.User, password string) {
	h, err := flowengine.HashPassword(password)
	if err != nil {
		return
	}
	fresh, ok := freshUser(ctx, sc, user)
	if !ok || fresh.PasswordHash != user.PasswordHash {
		return
	}
	upgraded := *fresh
	upgraded.PasswordHash = h
	_ = sc.Store.UpdateUserIf(ctx, &upgraded, fresh)
}

// attempt describes a password attempt for the observer: the account, or for an
// unknown name what was typed (cut short: it may be a mistyped password).
func attempt(u *flowengine.User, typed, result string) flowengine.Event {
	ev := flowengine.Event{Kind: flowengine.EventLoginAttempt, Result: result}
	if u != nil {
		ev.UserID, ev.Username = u.ID, u.Username
	} else {
		if len(typed) > 64 {
			typed = typed[:64]
		}
		ev.Username = typed
	}
	return ev
}

// busyAttempt describes an attempt refused before it was heard. It names the
// account only by what the execution already holds (no store lookup, which
// would make the answer slower for a known name than for an unknown one).
func busyAttempt(sc *flowengine.StageContext, typed string) flowengine.Event {
	ev := attempt(nil, typed, "busy")
	ev.UserID, _ = sc.Context[flowengine.CtxPendingUser].(string)
	return ev
}

// intState reads a counter that may have passed through JSON as float64.
func intState(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

func identifierOf(sc *flowengine.StageContext) string {
	id, _ := sc.Context[flowengine.CtxPendingUserIdentifier].(string)
	return id
}
