package blueprint

// Document is the blueprint file format (version 1).
type Document struct {
	Version  int           `yaml:"version" json:"version"`
	Metadata *Metadata     `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	Policies []PolicyEntry `yaml:"policies,omitempty" json:"policies,omitempty"`
	Stages   []StageEntry  `yaml:"stages,omitempty" json:"stages,omitempty"`
	Flows    []FlowEntry   `yaml:"flows,omitempty" json:"flows,omitempty"`
	Users    []UserEntry   `yaml:"users,omitempty" json:"users,omitempty"`
}

// Metadata describes a blueprint.
type Metadata struct {
	Name        string `yaml:"name,omitempty" json:"name,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// State says what an entry does on import. Flows, stages and policies are
// present (upserted, the default) or absent (removed; only the name or slug is
// needed). Seed users are created (when missing only, the default: later changes
// such as a new password or a deactivation are never undone) or present
// (authoritative: the fields the entry names overwrite the stored user's).
type State string

// States.
const (
	StatePresent State = "present"
	StateAbsent  State = "absent"
	StateCreated State = "created"
)

var (
	entryStates = []State{StatePresent, StateAbsent}
	userStates  = []State{StateCreated, StatePresent}
)

// PolicyEntry is a named Rego module.
type PolicyEntry struct {
	Name  string `yaml:"name" json:"name"`
	Rego  string `yaml:"rego,omitempty" json:"rego,omitempty"`
	State State  `yaml:"state,omitempty" json:"state,omitempty"`
}

// StageEntry is a named, configured stage.
type StageEntry struct {
	Name   string         `yaml:"name" json:"name"`
	Type   string         `yaml:"type,omitempty" json:"type,omitempty"`
	Config map[string]any `yaml:"config,omitempty" json:"config,omitempty"`
	State  State          `yaml:"state,omitempty" json:"state,omitempty"`
}

// FlowEntry is a flow; omitted fields take their defaults.
type FlowEntry struct {
	Slug             string              `yaml:"slug" json:"slug"`
	Name             string              `yaml:"name,omitempty" json:"name,omitempty"`
	Title            string              `yaml:"title,omitempty" json:"title,omitempty"`
	Designation      string              `yaml:"designation,omitempty" json:"designation,omitempty"`
	Order            int                 `yaml:"order,omitempty" json:"order,omitempty"`
	DeniedAction     string              `yaml:"denied_action,omitempty" json:"denied_action,omitempty"`
	PolicyEngineMode string              `yaml:"policy_engine_mode,omitempty" json:"policy_engine_mode,omitempty"`
	Authentication   string              `yaml:"authentication,omitempty" json:"authentication,omitempty"`
	Policies         []BindingEntry      `yaml:"policies,omitempty" json:"policies,omitempty"`
	Stages           []StageBindingEntry `yaml:"stages,omitempty" json:"stages,omitempty"`
	State            State               `yaml:"state,omitempty" json:"state,omitempty"`
}

// StageBindingEntry places a stage in a flow.
type StageBindingEntry struct {
	Stage                 string         `yaml:"stage" json:"stage"`
	Order                 int            `yaml:"order" json:"order"`
	EvaluateOnPlan        *bool          `yaml:"evaluate_on_plan,omitempty" json:"evaluate_on_plan,omitempty"`
	ReEvaluatePolicies    *bool          `yaml:"re_evaluate_policies,omitempty" json:"re_evaluate_policies,omitempty"`
	PolicyEngineMode      string         `yaml:"policy_engine_mode,omitempty" json:"policy_engine_mode,omitempty"`
	InvalidResponseAction string         `yaml:"invalid_response_action,omitempty" json:"invalid_response_action,omitempty"`
	Policies              []BindingEntry `yaml:"policies,omitempty" json:"policies,omitempty"`
}

// BindingEntry binds a policy, a group or a user.
type BindingEntry struct {
	Policy        string `yaml:"policy,omitempty" json:"policy,omitempty"`
	Group         string `yaml:"group,omitempty" json:"group,omitempty"`
	User          string `yaml:"user,omitempty" json:"user,omitempty"`
	Order         int    `yaml:"order,omitempty" json:"order,omitempty"`
	Enabled       *bool  `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	Negate        *bool  `yaml:"negate,omitempty" json:"negate,omitempty"`
	Timeout       string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	FailureResult *bool  `yaml:"failure_result,omitempty" json:"failure_result,omitempty"`
}

// UserEntry is a seed user; password_hash is argon2id or bcrypt. Without state
// (or state: created) it only creates a missing user; state: present overwrites
// the fields the entry names.
type UserEntry struct {
	Username     string         `yaml:"username" json:"username"`
	Email        string         `yaml:"email,omitempty" json:"email,omitempty"`
	Name         string         `yaml:"name,omitempty" json:"name,omitempty"`
	IsActive     *bool          `yaml:"is_active,omitempty" json:"is_active,omitempty"`
	PasswordHash string         `yaml:"password_hash,omitempty" json:"password_hash,omitempty"`
	Groups       []string       `yaml:"groups,omitempty" json:"groups,omitempty"`
	Attributes   map[string]any `yaml:"attributes,omitempty" json:"attributes,omitempty"`
	State        State          `yaml:"state,omitempty" json:"state,omitempty"`
}
