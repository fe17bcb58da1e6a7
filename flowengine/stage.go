package flowengine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Stage is one step of a flow. Implementations live in flowengine/stages, one file
// per type; adding a type needs no change here.
type Stage interface {
	// Challenge returns what the user must answer now, or nil when the stage needs
	// no input; then Submit runs at once with an empty answer. Calling it twice for
	// the same execution must describe the same challenge (keep generated secrets in
	// StageContext.State).
	Challenge(ctx context.Context, sc *StageContext) (*Challenge, error)
	// Submit handles an answer whose keys and types the executor has checked
	// against the challenge's fields. An error aborts the request and changes nothing.
	Submit(ctx context.Context, sc *StageContext, answer Answer) (Outcome, error)
}

// Interactive is an optional interface of a Stage that can tell, before it runs,
// whether it will ask the visitor anything. A page's "Step N of M" (and the JSON
// stage.step/steps) counts only the stages a visitor sees: those that showed a
// page, and the planned ones still ahead that will. A stage type that does not
// implement Interactive is counted. earlier are the stages planned before this
// one in the same execution (a user_login whose "Stay signed in" was asked on an
// earlier password page needs no page of its own). Planned stages may still be
// skipped by their re-evaluated policies: the count is recomputed at every page.
type Interactive interface {
	Interactive(earlier []Stage) bool
}

// StageUser is an optional interface of a Stage that names other stages (an
// authenticator_validate's configuration_stages). A configuration naming a
// stage that does not exist fails to load.
type StageUser interface {
	StageNames() []string
}

// PolicyUser is an optional interface of a Stage that evaluates policies by
// name (a prompt stage's validation_policies). A configuration naming a policy
// that does not exist fails to load.
type PolicyUser interface {
	PolicyNames() []string
}

// StageFactory decodes and checks a stage's config and returns the ready stage.
// It runs when configuration loads, so a bad config fails the load.
type StageFactory func(def StageDef) (Stage, error)

// Field types a challenge can ask for.
const (
	FieldText        = "text"
	FieldUsername    = "username"
	FieldEmail       = "email"
	FieldPassword    = "password"
	FieldNewPassword = "new_password"
	FieldCode        = "code"
	FieldCheckbox    = "checkbox"
	FieldChoice      = "choice"
	FieldHidden      = "hidden"
	FieldTextArea    = "text_area"
	FieldNumber      = "number"
	FieldDate        = "date" // YYYY-MM-DD
	// FieldStatic is text shown with the fields; it takes no answer.
	FieldStatic = "static"
)

// Challenge is what a stage asks of the user.
type Challenge struct {
	Fields   []Field
	Messages []string
	Data     map[string]any
}

// Field is one input of a challenge.
type Field struct {
	Key      string   `json:"key"`
	Type     string   `json:"type"`
	Label    string   `json:"label"`
	Required bool     `json:"required"`
	Choices  []Choice `json:"choices,omitempty"`
	// Autocomplete is the HTML autocomplete token (username, current-password,
	// new-password, one-time-code) so password managers work.
	Autocomplete string `json:"autocomplete,omitempty"`
	Placeholder  string `json:"placeholder,omitempty"`
	// Value pre-fills the field.
	Value string `json:"value,omitempty"`
	// SubText is help shown under the field.
	SubText string `json:"sub_text,omitempty"`
	// Presentation is how a page may show the field beyond its type: "radio"
	// shows a choice as a radio group rather than a drop-down.
	Presentation string `json:"presentation,omitempty"`
}

// PresentationRadio asks a page to show a choice field as a radio group.
const PresentationRadio = "radio"

// Choice is one option of a choice field.
type Choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// Answer is a checked response: every key is a field of the challenge, every value a
// string (checkboxes: "true" or "false").
type Answer map[string]string

// Bool reads a checkbox answer.
func (a Answer) Bool(key string) bool {
	switch strings.ToLower(a[key]) {
	case "true", "on", "1", "yes":
		return true
	}
	return false
}

// OutcomeKind says how a stage ended its turn.
type OutcomeKind int

// Outcome kinds.
const (
	// OutcomeContinue: the stage is done; go on with the plan.
	OutcomeContinue OutcomeKind = iota
	// OutcomeInvalid: the answer was wrong; the binding's invalid_response_action decides.
	OutcomeInvalid
	// OutcomeDeny: end the flow with a denial message.
	OutcomeDeny
	// OutcomeCancel: discard the execution and start the flow over with a message.
	OutcomeCancel
	// OutcomeWait: the stage waits for something outside the flow (a mailed
	// link); its challenge is shown again and the flow stays on it.
	OutcomeWait
)

// Outcome is a stage's verdict on an answer.
type Outcome struct {
	Kind     OutcomeKind
	Errors   map[string][]string
	Messages []string
}

// Continue ends a stage successfully.
func Continue() Outcome { return Outcome{Kind: OutcomeContinue} }

// Invalid rejects an answer with field errors and messages.
func Invalid(errors map[string][]string, messages ...string) Outcome {
	return Outcome{Kind: OutcomeInvalid, Errors: errors, Messages: messages}
}

// Deny ends the flow with a message.
func Deny(message string) Outcome { return Outcome{Kind: OutcomeDeny, Messages: []string{message}} }

// Wait keeps the flow on the stage and shows its challenge again, with messages.
func Wait(messages ...string) Outcome { return Outcome{Kind: OutcomeWait, Messages: messages} }

// Cancel starts the flow over with a message.
func Cancel(message string) Outcome { return Outcome{Kind: OutcomeCancel, Messages: []string{message}} }

// Plan context keys shared by stages and policies.
const (
	CtxPendingUser           = "pending_user" // user ID
	CtxPromptData            = "prompt_data"  // map[string]any
	CtxPendingUserIdentifier = "pending_user_identifier"
	CtxRedirect              = "redirect"
	CtxNext                  = "next"
	CtxAuthMethods           = "auth_methods" // []string
	CtxIsRestored            = "is_restored"
	CtxFlowPlan              = "flow_plan"
	// CtxRememberMe is the visitor's "Stay signed in" choice (bool), asked on the
	// password page when a later user_login offers it.
	CtxRememberMe = "remember_me"
)

// StageContext is what a stage sees while it runs: the plan context, the request,
// the store and the services, plus the side effects it may ask for.
type StageContext struct {
	Flow      *Flow
	StageName string
	StageType string
	Request   *Request
	// Context is the plan context; it is saved with the execution, so values must
	// survive a JSON round trip.
	Context map[string]any
	// State is this stage's private scratch space within the execution.
	State    map[string]any
	Store    Store
	Clock    Clock
	Services Services

	exec     *execution
	loaded   *loaded
	observer Observer
}

// Report tells the engine's observer (metrics, audit log) about ev, with the
// flow, the stage and the client IP filled in.
func (sc *StageContext) Report(ev Event) {
	if sc.observer == nil {
		return
	}
	ev.Flow, ev.Stage = sc.Flow.Slug, sc.StageName
	if sc.Request != nil {
		ev.ClientIP = sc.Request.ClientIP
	}
	sc.observer.Observe(ev)
}

// Services are optional collaborators some stages need; nil means absent.
type Services struct {
	Mailer Mailer
	// MailRenderer writes the email stage's mail; nil keeps the built-in wording.
	MailRenderer MailRenderer
	Regulator    Regulator
	// BaseURL builds absolute links to a flow (email stage).
	BaseURL string
	// Hashes bounds password hashing (password stage); nil is unlimited.
	Hashes *HashLimiter
	// Secrets seals device secrets at rest (TOTP); nil refuses to set up TOTP.
	Secrets Secrets
	// KeepHashes leaves stored password hashes as they are; by default a login
	// moves a non-default hash to the default (benchmarks set it to measure the
	// flow rather than argon2id).
	KeepHashes bool
}

// MailRenderer renders a stage's mail (kind "email": the email stage's link)
// from templates an operator may replace.
type MailRenderer interface {
	RenderMail(kind string, data MailData) (subject, text, html string, err error)
}

// MailData is what a mail says.
type MailData struct {
	Link      string // the absolute link that continues the flow
	FlowTitle string
	Username  string // the pending user's, else prompt_data's username; may be ""
	Expiry    string // how long the link works, as text ("30m")
}

// Later returns the stages planned after this one in the execution, in order.
// A later stage may still be skipped by its re-evaluated policies.
func (sc *StageContext) Later() []Stage {
	if sc.exec == nil || sc.loaded == nil {
		return nil
	}
	var out []Stage
	for _, entry := range sc.exec.Plan[min(sc.exec.Current+1, len(sc.exec.Plan)):] {
		if _, st := lookupBinding(sc.loaded, sc.Flow, entry); st != nil {
			out = append(out, st.impl)
		}
	}
	return out
}

// PendingUser loads the user the flow acts on, or nil if none is chosen yet.
func (sc *StageContext) PendingUser(ctx context.Context) (*User, error) {
	id, _ := sc.Context[CtxPendingUser].(string)
	if id == "" {
		return nil, nil
	}
	u, err := sc.Store.GetUser(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading pending user: %w", err)
	}
	return u, nil
}

// SetPendingUser chooses the user the flow acts on (nil clears it).
func (sc *StageContext) SetPendingUser(u *User) {
	if u == nil {
		delete(sc.Context, CtxPendingUser)
		return
	}
	sc.Context[CtxPendingUser] = u.ID
}

// AddAuthMethod records how the user proved who they are (password, totp, …).
func (sc *StageContext) AddAuthMethod(method string) {
	methods := StringList(sc.Context[CtxAuthMethods])
	for _, m := range methods {
		if m == method {
			return
		}
	}
	sc.Context[CtxAuthMethods] = append(methods, method)
}

// InsertStages puts the named stages into the plan right after the current
// one, in the given order; they run without policies of their own. A name that
// is not a configured stage is an error (the configuration names it, so a
// stage's factory should have checked it; see StageUser).
func (sc *StageContext) InsertStages(names ...string) error {
	if sc.exec == nil || sc.loaded == nil {
		return fmt.Errorf("inserting stages: no running execution")
	}
	entries := make([]planEntry, 0, len(names))
	for _, n := range names {
		if _, ok := sc.loaded.stages[n]; !ok {
			return fmt.Errorf("inserting stage %q: no such stage", n)
		}
		entries = append(entries, planEntry{Stage: n, Inserted: true})
	}
	at := min(sc.exec.Current+1, len(sc.exec.Plan))
	plan := append([]planEntry{}, sc.exec.Plan[:at]...)
	plan = append(plan, entries...)
	sc.exec.Plan = append(plan, sc.exec.Plan[at:]...)
	return nil
}

// StageType returns the type of the configured stage with this name, or "".
func (sc *StageContext) StageTypeOf(name string) string {
	if sc.loaded == nil {
		return ""
	}
	if st, ok := sc.loaded.stages[name]; ok {
		return st.def.Type
	}
	return ""
}

// AuthMethods lists the methods recorded so far.
func (sc *StageContext) AuthMethods() []string { return StringList(sc.Context[CtxAuthMethods]) }

// StartSession asks the gateway to issue a cookie for a session the stage stored.
func (sc *StageContext) StartSession(s *Session) { sc.exec.newSession = s }

// EndSession asks the gateway to clear the session cookie; the stage has deleted
// the record.
func (sc *StageContext) EndSession() { sc.exec.endSession = true }

// StringList reads a []string that may have passed through JSON as []any.
func StringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// DecodeConfig decodes a stage config map into dst strictly: an unknown key or a
// wrong type is an error naming the key.
func DecodeConfig(config map[string]any, dst any) error {
	if len(config) == 0 {
		return nil
	}
	raw, err := json.Marshal(config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			msg = fmt.Sprintf("config key %q: want %s, got %s", te.Field, te.Type, te.Value)
		} else if strings.HasPrefix(msg, "unknown field ") {
			msg = "unknown config key " + strings.TrimPrefix(msg, "unknown field ")
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}
