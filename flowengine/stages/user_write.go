package stages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("user_write", newUserWrite) }

// UserCreationMode says when user_write creates a user rather than writing to
// the pending one.
type UserCreationMode string

// User creation modes, with authentik's names.
const (
	// NeverCreate writes only to the pending user; without one the flow is denied.
	NeverCreate UserCreationMode = "never_create"
	// CreateWhenRequired writes to the pending user, or creates one if there is none.
	CreateWhenRequired UserCreationMode = "create_when_required"
	// AlwaysCreate always creates a new user.
	AlwaysCreate UserCreationMode = "always_create"
)

// UserWriteConfig configures the user_write stage.
type UserWriteConfig struct {
	// UserCreationMode is never_create, create_when_required or always_create
	// (default create_when_required).
	UserCreationMode UserCreationMode `json:"user_creation_mode,omitempty"`
	// CreateUsersAsInactive creates users that cannot sign in until activated,
	// e.g. by an email stage (default false).
	CreateUsersAsInactive bool `json:"create_users_as_inactive,omitempty"`
	// CreateUsersGroup is a group new users join (default none).
	CreateUsersGroup string `json:"create_users_group,omitempty"`
	// UserPathTemplate is accepted for authentik exports and ignored: flowgate
	// has no user paths.
	UserPathTemplate string `json:"user_path_template,omitempty"`
}

type userWrite struct{ cfg UserWriteConfig }

func newUserWrite(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &userWrite{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	switch s.cfg.UserCreationMode {
	case "":
		s.cfg.UserCreationMode = CreateWhenRequired
	case NeverCreate, CreateWhenRequired, AlwaysCreate:
	default:
		return nil, fmt.Errorf("user_creation_mode: %q is not never_create, create_when_required or always_create",
			s.cfg.UserCreationMode)
	}
	return s, nil
}

func (*userWrite) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

// Interactive: writing the user needs no page.
func (*userWrite) Interactive([]flowengine.Stage) bool { return false }

// Prompt data keys user_write reads; "attributes.<key>" also maps.
const (
	promptUsername   = "username"
	promptEmail      = "email"
	promptName       = "name"
	promptPassword   = "password"
	promptAttributes = "attributes."
	// reservedAttributePrefix marks attributes flowgate itself keeps.
	reservedAttributePrefix = "flowgate."
)

// userChanges is what the prompt data asks to write. Only these keys map: a
// client can never set is_active, groups or anything else through prompt data.
type userChanges struct {
	username, email, name *string
	passwordHash          string // "" when no new password
	attributes            map[string]any
}

func (s *userWrite) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	var pending *flowengine.User
	if s.cfg.UserCreationMode != AlwaysCreate {
		u, err := sc.PendingUser(ctx)
		switch {
		case errors.Is(err, flowengine.ErrNotFound):
			return flowengine.Deny("This account no longer exists."), nil
		case err != nil:
			return flowengine.Outcome{}, err
		}
		pending = u
	}
	if pending == nil && s.cfg.UserCreationMode == NeverCreate {
		return flowengine.Deny("There is no account to update."), nil
	}
	data, _ := sc.Context[flowengine.CtxPromptData].(map[string]any)
	ch, errs := readChanges(data, pending == nil)
	if len(errs) > 0 {
		return flowengine.Invalid(errs), nil
	}
	if pw, ok := data[promptPassword].(string); ok {
		h, err := hashNew(ctx, sc, pw)
		if err != nil {
			return flowengine.Outcome{}, err
		}
		ch.passwordHash = h
	}
	if pending == nil {
		return s.create(ctx, sc, ch)
	}
	return s.update(ctx, sc, pending, ch)
}

// readChanges maps prompt data onto userChanges and checks the username and
// email; errs is keyed by the prompt field. creating requires a username.
func readChanges(data map[string]any, creating bool) (ch userChanges, errs map[string][]string) {
	errs = map[string][]string{}
	text := func(key string) *string {
		v, ok := data[key]
		if !ok {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			errs[key] = append(errs[key], "This field must be text.")
			return nil
		}
		s = strings.TrimSpace(s)
		return &s
	}
	ch.username, ch.email, ch.name = text(promptUsername), text(promptEmail), text(promptName)
	switch {
	case ch.username != nil:
		if err := flowengine.CheckUsername(*ch.username); err != nil {
			errs[promptUsername] = append(errs[promptUsername], sentence(err))
		}
	case creating && errs[promptUsername] == nil:
		errs[promptUsername] = append(errs[promptUsername], "A username is required.")
	}
	if ch.email != nil {
		if err := flowengine.CheckEmail(*ch.email); err != nil {
			errs[promptEmail] = append(errs[promptEmail], sentence(err))
		}
	}
	if v, ok := data[promptPassword]; ok {
		if pw, _ := v.(string); pw == "" {
			errs[promptPassword] = append(errs[promptPassword], "A password is required.")
		}
	}
	for k, v := range data {
		// One level: "attributes.a.b" sets the attribute named "a.b".
		// Attributes under "flowgate." are flowgate's own records (remembered
		// consent): no answer may set them.
		if key, ok := strings.CutPrefix(k, promptAttributes); ok && key != "" && !strings.HasPrefix(key, reservedAttributePrefix) {
			if ch.attributes == nil {
				ch.attributes = map[string]any{}
			}
			ch.attributes[key] = v
		}
	}
	return ch, errs
}

// sentence turns a check's error into a field message.
func sentence(err error) string {
	msg := err.Error()
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:] + "."
}

// hashNew hashes a new password within the gateway's hashing limit: an
// enrollment flood must not take every core any more than a login flood.
func hashNew(ctx context.Context, sc *flowengine.StageContext, password string) (string, error) {
	release, err := sc.Services.Hashes.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	h, err := flowengine.HashPassword(password)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}

// apply writes ch onto u, whose Attributes map must be u's own.
func (ch userChanges) apply(u *flowengine.User) {
	if ch.username != nil {
		u.Username = *ch.username
	}
	if ch.email != nil {
		u.Email = *ch.email
	}
	if ch.name != nil {
		u.Name = *ch.name
	}
	if ch.passwordHash != "" {
		u.PasswordHash = ch.passwordHash
	}
	if len(ch.attributes) > 0 && u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	maps.Copy(u.Attributes, ch.attributes)
}

func (s *userWrite) create(ctx context.Context, sc *flowengine.StageContext, ch userChanges) (flowengine.Outcome, error) {
	u := &flowengine.User{
		ID:        flowengine.NewID(),
		IsActive:  !s.cfg.CreateUsersAsInactive,
		CreatedAt: sc.Clock.Now().UTC(),
	}
	if s.cfg.CreateUsersGroup != "" {
		u.Groups = []string{s.cfg.CreateUsersGroup}
	}
	ch.apply(u)
	// The store's CreateUser checks and claims the username and email in one
	// atomic step, so two enrollments racing for one name cannot both win.
	err := sc.Store.CreateUser(ctx, u)
	if errors.Is(err, flowengine.ErrConflict) {
		return conflict(ctx, sc, u)
	}
	if err != nil {
		return flowengine.Outcome{}, fmt.Errorf("creating user: %w", err)
	}
	sc.SetPendingUser(u)
	return flowengine.Continue(), nil
}

func (s *userWrite) update(ctx context.Context, sc *flowengine.StageContext, pending *flowengine.User, ch userChanges) (flowengine.Outcome, error) {
	// Compare against a fresh read by username: reads by ID may come from the
	// store's short-lived cache, and a write compared against a stale copy
	// would only be refused.
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
	ch.apply(&u)
	// Only if nothing changed since the read: an operator's deactivation or new
	// password landing meanwhile is never written back over.
	err = sc.Store.UpdateUserIf(ctx, &u, prev)
	switch {
	case errors.Is(err, flowengine.ErrConflict):
		return conflict(ctx, sc, &u)
	case errors.Is(err, flowengine.ErrChanged):
		return flowengine.Invalid(nil, "Your account changed meanwhile; please try again."), nil
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny("This account no longer exists."), nil
	case err != nil:
		return flowengine.Outcome{}, fmt.Errorf("updating user: %w", err)
	}
	if ch.passwordHash != "" {
		// A new password ends every other session: whoever knew the old one
		// (and signed in with it) is signed out. The session making the change
		// stays.
		var keep []string
		if cur := sc.Request.Session; cur != nil && cur.UserID == u.ID {
			keep = append(keep, cur.ID)
		}
		if err := sc.Store.DeleteUserSessions(ctx, u.ID, keep...); err != nil {
			return flowengine.Outcome{}, fmt.Errorf("ending other sessions: %w", err)
		}
	}
	sc.SetPendingUser(&u)
	return flowengine.Continue(), nil
}

// conflict tells which of u's username or email another account holds.
func conflict(ctx context.Context, sc *flowengine.StageContext, u *flowengine.User) (flowengine.Outcome, error) {
	other, err := sc.Store.GetUserByUsername(ctx, u.Username)
	switch {
	case err == nil && other.ID != u.ID:
		return flowengine.Invalid(map[string][]string{promptUsername: {"This username is already taken."}}), nil
	case err != nil && !errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Outcome{}, fmt.Errorf("loading user: %w", err)
	}
	return flowengine.Invalid(map[string][]string{promptEmail: {"This email is already in use."}}), nil
}

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = (*userWrite)(nil)
