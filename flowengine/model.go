package flowengine

import (
	"fmt"
	"strings"
	"time"
)

// Designation says what a flow is for.
type Designation string

// Designations, every value in one place.
const (
	DesignationAuthentication     Designation = "authentication"
	DesignationInvalidation       Designation = "invalidation"
	DesignationEnrollment         Designation = "enrollment"
	DesignationUnenrollment       Designation = "unenrollment"
	DesignationRecovery           Designation = "recovery"
	DesignationStageConfiguration Designation = "stage_configuration"
)

// Designations lists every valid designation.
var Designations = []Designation{
	DesignationAuthentication, DesignationInvalidation, DesignationEnrollment,
	DesignationUnenrollment, DesignationRecovery, DesignationStageConfiguration,
}

// DeniedAction says what happens when a flow's own policies deny the request.
type DeniedAction string

// Denied actions.
const (
	DeniedMessageContinue DeniedAction = "message_continue"
	DeniedMessage         DeniedAction = "message"
	DeniedContinue        DeniedAction = "continue"
)

// DeniedActions lists every valid denied action.
var DeniedActions = []DeniedAction{DeniedMessageContinue, DeniedMessage, DeniedContinue}

// EngineMode combines the results of several policy bindings.
type EngineMode string

// Policy engine modes.
const (
	ModeAny EngineMode = "any"
	ModeAll EngineMode = "all"
)

// EngineModes lists every valid policy engine mode.
var EngineModes = []EngineMode{ModeAny, ModeAll}

// AuthRequirement restricts who may start a flow.
type AuthRequirement string

// Authentication requirements.
const (
	AuthNone                   AuthRequirement = "none"
	AuthRequireAuthenticated   AuthRequirement = "require_authenticated"
	AuthRequireUnauthenticated AuthRequirement = "require_unauthenticated"
)

// AuthRequirements lists every valid authentication requirement.
var AuthRequirements = []AuthRequirement{AuthNone, AuthRequireAuthenticated, AuthRequireUnauthenticated}

// InvalidResponseAction says what happens when a stage rejects an answer.
type InvalidResponseAction string

// Invalid response actions.
const (
	InvalidRetry              InvalidResponseAction = "retry"
	InvalidRestart            InvalidResponseAction = "restart"
	InvalidRestartWithContext InvalidResponseAction = "restart_with_context"
)

// InvalidResponseActions lists every valid invalid response action.
var InvalidResponseActions = []InvalidResponseAction{InvalidRetry, InvalidRestart, InvalidRestartWithContext}

// DefaultPolicyTimeout bounds one policy evaluation when a binding sets no timeout.
const DefaultPolicyTimeout = 30 * time.Second

// Flow is a named, designated sequence of stage bindings.
type Flow struct {
	Slug             string
	Name             string
	Title            string
	Designation      Designation
	Order            int
	DeniedAction     DeniedAction
	PolicyEngineMode EngineMode
	Authentication   AuthRequirement
	Policies         []PolicyBinding
	Stages           []StageBinding
	// BuiltIn marks the embedded default flows, installed only without
	// blueprints; selection by designation puts them after every operator flow.
	BuiltIn bool `json:",omitempty"`
}

// StageBinding places a stage in a flow.
type StageBinding struct {
	Stage                 string
	Order                 int
	EvaluateOnPlan        bool
	ReEvaluatePolicies    bool
	PolicyEngineMode      EngineMode
	Policies              []PolicyBinding
	InvalidResponseAction InvalidResponseAction
}

// PolicyBinding attaches exactly one of a Rego policy, a group or a user to a flow
// or a stage binding.
type PolicyBinding struct {
	Policy        string
	Group         string
	User          string
	Order         int
	Enabled       bool
	Negate        bool
	Timeout       time.Duration
	FailureResult bool
	// FailureResultSet says the binding chose FailureResult explicitly; without
	// it an error or timeout stops the execution instead (fail closed).
	FailureResultSet bool `json:",omitempty"`
}

// Target names what the binding checks, for records and logs.
func (b PolicyBinding) Target() string {
	switch {
	case b.Policy != "":
		return "policy " + b.Policy
	case b.Group != "":
		return "group " + b.Group
	default:
		return "user " + b.User
	}
}

// Policy is a named Rego module.
type Policy struct {
	Name string
	Rego string
}

// StageDef is a named, configured stage of some type. Config is the stage type's
// own settings, decoded and checked by the type when the configuration loads.
type StageDef struct {
	Name   string
	Type   string
	Config map[string]any
}

// Config is everything that defines flows: the unit a blueprint import replaces
// atomically.
type Config struct {
	Flows    []Flow
	Stages   []StageDef
	Policies []Policy
}

// User is an account.
type User struct {
	ID           string         `json:"id"`
	Username     string         `json:"username"`
	Email        string         `json:"email,omitempty"`
	Name         string         `json:"name,omitempty"`
	IsActive     bool           `json:"is_active"`
	PasswordHash string         `json:"password_hash,omitempty"`
	Groups       []string       `json:"groups,omitempty"`
	Attributes   map[string]any `json:"attributes,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
	// LastLogin is when the user last signed in (zero: never); written at each
	// login by the user_login stage, best effort. (omitzero, not omitempty:
	// omitempty never leaves out a struct such as time.Time.)
	LastLogin time.Time `json:"last_login,omitzero"`
	// Devices are the user's second factors (authenticator setup stages).
	Devices []Device `json:"devices,omitempty"`
}

// InGroup reports whether the user is a member of group.
func (u *User) InGroup(group string) bool {
	for _, g := range u.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Session is a server-side login session; the cookie only carries its ID.
type Session struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	LastSeen    time.Time `json:"last_seen"`
	ClientIP    string    `json:"client_ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	AuthMethods []string  `json:"auth_methods,omitempty"`
	// Persistent asks for a cookie that outlives the browser (remember me, or a
	// session_duration above zero).
	Persistent bool `json:"persistent,omitempty"`
	// Flow is the slug of the authentication flow that created the session; a
	// site that pins its authentication flow accepts only its own sessions.
	Flow string `json:"flow,omitempty"`
}

// NormalizeKey lower-cases a username or email for unique, case-insensitive lookup.
func NormalizeKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func oneOf[T ~string](v T, valid []T) error {
	for _, x := range valid {
		if v == x {
			return nil
		}
	}
	names := make([]string, len(valid))
	for i, x := range valid {
		names[i] = string(x)
	}
	return fmt.Errorf("unknown value %q (want one of %s)", v, strings.Join(names, ", "))
}

// SeedUser is a user defined in a blueprint.
type SeedUser struct {
	User *User
	// Authoritative (a blueprint entry's state: present) makes the seed overwrite
	// the stored user's Fields; otherwise a seed only creates a missing user and
	// never undoes later changes (a new password, a deactivation).
	Authoritative bool
	// Fields are the blueprint keys the entry names: email, name, is_active,
	// password_hash, groups, attributes.
	Fields []string
}

// MergeSeedUser returns what to store for a seed given the stored user (nil if
// none), and false when the stored user must stay as it is. A new user gets a
// fresh ID; an authoritative seed overwrites only the fields it names, keeping
// the stored ID and creation time so sessions stay valid.
func MergeSeedUser(existing *User, seed SeedUser) (*User, bool) {
	if existing == nil {
		m := *seed.User
		if m.ID == "" {
			m.ID = NewID()
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = time.Now().UTC()
		}
		return &m, true
	}
	if !seed.Authoritative {
		return nil, false
	}
	m := *existing
	for _, f := range seed.Fields {
		switch f {
		case "email":
			m.Email = seed.User.Email
		case "name":
			m.Name = seed.User.Name
		case "is_active":
			m.IsActive = seed.User.IsActive
		case "password_hash":
			m.PasswordHash = seed.User.PasswordHash
		case "groups":
			m.Groups = seed.User.Groups
		case "attributes":
			m.Attributes = seed.User.Attributes
		}
	}
	return &m, true
}
