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

// MergeSeedUser applies a blueprint's seed user onto the stored one (nil if new):
// the seed's fields win, but a seed without a password hash keeps the stored one,
// and the stored ID and creation time are kept so sessions stay valid.
func MergeSeedUser(existing, seed *User) *User {
	m := *seed
	if existing == nil {
		if m.ID == "" {
			m.ID = NewID()
		}
		return &m
	}
	m.ID, m.CreatedAt = existing.ID, existing.CreatedAt
	if m.PasswordHash == "" {
		m.PasswordHash = existing.PasswordHash
	}
	return &m
}
