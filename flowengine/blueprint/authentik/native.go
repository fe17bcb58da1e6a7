package authentik

// The flowgate blueprint format (flowengine/blueprint.Document), written
// here by its field names because that package imports this one.
type (
	nDocument struct {
		Version  int        `yaml:"version"`
		Metadata *nMetadata `yaml:"metadata,omitempty"`
		Policies []nPolicy  `yaml:"policies,omitempty"`
		Stages   []nStage   `yaml:"stages,omitempty"`
		Flows    []nFlow    `yaml:"flows,omitempty"`
	}
	nMetadata struct {
		Name        string `yaml:"name,omitempty"`
		Description string `yaml:"description,omitempty"`
	}
	nPolicy struct {
		Name  string `yaml:"name"`
		Rego  string `yaml:"rego,omitempty"`
		State string `yaml:"state,omitempty"`
	}
	nStage struct {
		Name   string         `yaml:"name"`
		Type   string         `yaml:"type,omitempty"`
		Config map[string]any `yaml:"config,omitempty"`
		State  string         `yaml:"state,omitempty"`
	}
	nFlow struct {
		Slug             string          `yaml:"slug"`
		Name             string          `yaml:"name,omitempty"`
		Title            string          `yaml:"title,omitempty"`
		Designation      string          `yaml:"designation,omitempty"`
		DeniedAction     string          `yaml:"denied_action,omitempty"`
		PolicyEngineMode string          `yaml:"policy_engine_mode,omitempty"`
		Authentication   string          `yaml:"authentication,omitempty"`
		Policies         []nBinding      `yaml:"policies,omitempty"`
		Stages           []nStageBinding `yaml:"stages,omitempty"`
		State            string          `yaml:"state,omitempty"`
	}
	nStageBinding struct {
		Stage                 string     `yaml:"stage"`
		Order                 int        `yaml:"order"`
		EvaluateOnPlan        *bool      `yaml:"evaluate_on_plan,omitempty"`
		ReEvaluatePolicies    *bool      `yaml:"re_evaluate_policies,omitempty"`
		PolicyEngineMode      string     `yaml:"policy_engine_mode,omitempty"`
		InvalidResponseAction string     `yaml:"invalid_response_action,omitempty"`
		Policies              []nBinding `yaml:"policies,omitempty"`
	}
	nBinding struct {
		Policy        string `yaml:"policy,omitempty"`
		Group         string `yaml:"group,omitempty"`
		User          string `yaml:"user,omitempty"`
		Order         int    `yaml:"order,omitempty"`
		Enabled       *bool  `yaml:"enabled,omitempty"`
		Negate        *bool  `yaml:"negate,omitempty"`
		Timeout       string `yaml:"timeout,omitempty"`
		FailureResult *bool  `yaml:"failure_result,omitempty"`
	}
)
