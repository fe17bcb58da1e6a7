package stages

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("user_login", newUserLogin) }

// UserLoginConfig configures the user_login stage.
type UserLoginConfig struct {
	// SessionDuration is how long the session lasts, as 24h or hours=24
	// (default 24h). Zero ("seconds=0") means until the browser closes, with a
	// server-side limit of 24h.
	SessionDuration string `json:"session_duration"`
	// RememberMeOffset, when set, offers "Stay signed in", which extends the
	// session by this much and makes the cookie outlive the browser.
	RememberMeOffset string `json:"remember_me_offset"`
	// TerminateOtherSessions ends the user's other sessions at login (default false).
	TerminateOtherSessions bool `json:"terminate_other_sessions"`
	// GeoIPBinding and NetworkBinding are accepted for authentik exports.
	GeoIPBinding   string `json:"geoip_binding"`
	NetworkBinding string `json:"network_binding"`
}

type userLogin struct {
	cfg        UserLoginConfig
	duration   time.Duration
	persistent bool
	remember   time.Duration
}

// browserSessionLimit bounds a session whose cookie lasts until the browser closes.
const browserSessionLimit = 24 * time.Hour

func newUserLogin(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &userLogin{duration: 24 * time.Hour, persistent: true}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	if s.cfg.SessionDuration != "" {
		d, err := flowengine.ParseDuration(s.cfg.SessionDuration)
		if err != nil {
			return nil, fmt.Errorf("session_duration: %w", err)
		}
		s.duration, s.persistent = d, d > 0
		if d == 0 {
			s.duration = browserSessionLimit
		}
	}
	if s.cfg.RememberMeOffset != "" {
		d, err := flowengine.ParseDuration(s.cfg.RememberMeOffset)
		if err != nil {
			return nil, fmt.Errorf("remember_me_offset: %w", err)
		}
		s.remember = d
	}
	return s, nil
}

// Challenge asks "Stay signed in" only when remember_me_offset is set and no
// earlier password page has asked it already (the answer is then in the plan
// context); otherwise the stage needs no page.
func (s *userLogin) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	if s.remember <= 0 {
		return nil, nil
	}
	if _, asked := sc.Context[flowengine.CtxRememberMe].(bool); asked {
		return nil, nil
	}
	return &flowengine.Challenge{Fields: []flowengine.Field{rememberMeField()}}, nil
}

// Interactive: a page only for "Stay signed in", and none when a password page
// planned earlier asks it.
func (s *userLogin) Interactive(earlier []flowengine.Stage) bool {
	if s.remember <= 0 {
		return false
	}
	for _, st := range earlier {
		if _, ok := st.(*password); ok {
			return false
		}
	}
	return true
}

func rememberMeField() flowengine.Field {
	return flowengine.Field{Key: "remember_me", Type: flowengine.FieldCheckbox, Label: "Stay signed in"}
}

func (s *userLogin) Submit(ctx context.Context, sc *flowengine.StageContext, a flowengine.Answer) (flowengine.Outcome, error) {
	user, err := sc.PendingUser(ctx)
	if err != nil || user == nil {
		return flowengine.Deny("Failed to authenticate."), nil
	}
	if !user.IsActive {
		return flowengine.Deny("This account is inactive."), nil
	}
	now := sc.Clock.Now()
	duration, persistent := s.duration, s.persistent
	remember, _ := sc.Context[flowengine.CtxRememberMe].(bool)
	if s.remember > 0 && (remember || a.Bool("remember_me")) {
		duration, persistent = duration+s.remember, true
	}
	// A fresh random ID at every login: a session ID planted before login is useless.
	sess := &flowengine.Session{
		ID:          flowengine.NewID(),
		UserID:      user.ID,
		CreatedAt:   now,
		LastSeen:    now,
		ExpiresAt:   now.Add(duration),
		ClientIP:    sc.Request.ClientIP,
		UserAgent:   sc.Request.UserAgent(),
		AuthMethods: sc.AuthMethods(),
		Persistent:  persistent,
		Flow:        sc.Flow.Slug,
	}
	old := sc.Request.Session
	if old != nil && old.UserID != user.ID {
		old = nil // another user's session: nothing carries over, and it stays
	}
	if old != nil {
		mergeSession(sess, old)
	}
	if err := sc.Store.CreateSession(ctx, sess); err != nil {
		return flowengine.Outcome{}, fmt.Errorf("creating session: %w", err)
	}
	if old != nil {
		// The new session replaces the one the user came with (a new ID, so a
		// planted or leaked old ID gains nothing from the step-up).
		if err := sc.Store.DeleteSession(ctx, old.ID); err != nil && !errors.Is(err, flowengine.ErrNotFound) {
			return flowengine.Outcome{}, fmt.Errorf("replacing session: %w", err)
		}
	}
	if s.cfg.TerminateOtherSessions {
		if err := sc.Store.DeleteUserSessions(ctx, user.ID, sess.ID); err != nil {
			return flowengine.Outcome{}, fmt.Errorf("ending other sessions: %w", err)
		}
	}
	recordLogin(ctx, sc, user, now)
	sc.StartSession(sess)
	sc.Report(flowengine.Event{Kind: flowengine.EventLoginSucceeded, UserID: user.ID, Username: user.Username, Result: "success"})
	return flowengine.Continue(), nil
}

// mergeSession makes sess, a new login of the user whose session old is,
// carry what old proved: a step-up (signing in again with a second factor)
// adds methods rather than replacing them, so the session holds the union of
// both sessions' auth methods. It keeps old's flow, so a site that pins its
// authentication flow still accepts the user after a step-up through another
// flow (the step-up adds proof; it does not change how the user first signed
// in). It never shortens old: the later expiry and a persistent cookie win.
func mergeSession(sess, old *flowengine.Session) {
	methods := append([]string{}, old.AuthMethods...)
	for _, m := range sess.AuthMethods {
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	sess.AuthMethods = methods
	if old.Flow != "" {
		sess.Flow = old.Flow
	}
	if old.ExpiresAt.After(sess.ExpiresAt) {
		sess.ExpiresAt = old.ExpiresAt
	}
	sess.Persistent = sess.Persistent || old.Persistent
}

// lastLoginGranularity: a login within this long of the recorded one is not
// written again, so scripted sign-ins do not rewrite the account each time.
const lastLoginGranularity = time.Minute

// recordLogin sets the user's LastLogin, for operators (the admin API's user
// list); best effort: the login does not depend on it. The write goes onto a
// fresh read of the account, and only if nothing changed since that read
// (UpdateUserIf): an operator's change landing meanwhile — a new password, a
// deactivation — is never written back over.
func recordLogin(ctx context.Context, sc *flowengine.StageContext, user *flowengine.User, now time.Time) {
	if now.Sub(user.LastLogin) < lastLoginGranularity {
		return
	}
	fresh, ok := freshUser(ctx, sc, user)
	if !ok || now.Sub(fresh.LastLogin) < lastLoginGranularity {
		return
	}
	seen := *fresh
	seen.LastLogin = now.UTC()
	_ = sc.Store.UpdateUserIf(ctx, &seen, fresh)
}

// freshUser reads user again for a best-effort write at sign-in, by username:
// the store's short-lived user cache serves reads by ID, and a write compared
// against a stale copy would only be refused. ok is false when the account is
// gone, is no longer this user, or is no longer active: then nothing is written.
// The record read is the caller's own copy.
func freshUser(ctx context.Context, sc *flowengine.StageContext, user *flowengine.User) (*flowengine.User, bool) {
	fresh, err := sc.Store.GetUserByUsername(ctx, user.Username)
	if err != nil || fresh.ID != user.ID || !fresh.IsActive {
		return nil, false
	}
	return fresh, true
}

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = (*userLogin)(nil)
