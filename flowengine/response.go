package flowengine

import "encoding/json"

// Response types of the HTTP contract.
const (
	TypeChallenge = "challenge"
	TypeRedirect  = "redirect"
	TypeDenied    = "denied"
)

// Response is exactly one of the JSON objects of the HTTP contract:
// {"type":"challenge",…}, {"type":"redirect","to":…} or {"type":"denied","message":…}.
type Response struct {
	Type     string
	Flow     FlowInfo
	Stage    StageInfo
	Fields   []Field
	Errors   map[string][]string
	Messages []string
	Data     map[string]any
	To       string
	Message  string
	// Refusals is how many of Messages, from the first, say why the last answer
	// was refused (a lock, a cancelled attempt): pages show those as errors. It
	// is not part of the JSON, where they are messages like any other.
	Refusals int
}

// FlowInfo identifies the flow in a challenge.
type FlowInfo struct {
	Slug        string `json:"slug"`
	Title       string `json:"title"`
	Designation string `json:"designation"`
}

// StageInfo identifies the stage in a challenge; Step counts from 1.
type StageInfo struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Step  int    `json:"step"`
	Steps int    `json:"steps"`
}

// MarshalJSON writes the contract's shape for each type.
func (r Response) MarshalJSON() ([]byte, error) {
	switch r.Type {
	case TypeRedirect:
		return json.Marshal(struct {
			Type string `json:"type"`
			To   string `json:"to"`
		}{r.Type, r.To})
	case TypeDenied:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}{r.Type, r.Message})
	}
	fields, errs, msgs, data := r.Fields, r.Errors, r.Messages, r.Data
	if fields == nil {
		fields = []Field{}
	}
	if errs == nil {
		errs = map[string][]string{}
	}
	if msgs == nil {
		msgs = []string{}
	}
	if data == nil {
		data = map[string]any{}
	}
	return json.Marshal(struct {
		Type     string              `json:"type"`
		Flow     FlowInfo            `json:"flow"`
		Stage    StageInfo           `json:"stage"`
		Fields   []Field             `json:"fields"`
		Errors   map[string][]string `json:"errors"`
		Messages []string            `json:"messages"`
		Data     map[string]any      `json:"data"`
	}{r.Type, r.Flow, r.Stage, fields, errs, msgs, data})
}

// Result is one executor step: the response for the client plus what the gateway
// must do besides sending it.
type Result struct {
	Response Response
	// ExecutionID is the handle that continues the flow (the execution's ID and
	// the secret binding it to this browser); empty once the execution has ended.
	// It changes with every answer.
	ExecutionID string
	// CSRFToken must come back with every form post of this execution.
	CSRFToken string
	// NewSession is set when a user_login stage logged someone in: issue its cookie.
	NewSession *Session
	// EndSession is set when a user_logout stage ended the caller's session.
	EndSession bool
	// RejectedNext holds a next target the validator refused, for the log.
	RejectedNext string
	// Next is the validated next target the execution was started with ("" if
	// none), for the links of pages that restart or end it.
	Next string
	// DefaultTarget says that a finished flow's redirect goes to the default
	// target because there was neither a redirect nor a valid next.
	DefaultTarget bool
	// Records are the policy evaluations of this step.
	Records []PolicyRecord
}
