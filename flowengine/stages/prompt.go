package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("prompt", newPrompt) }

// PromptType is the kind of a prompt field, with authentik's names.
type PromptType string

// Prompt field types.
const (
	PromptText     PromptType = "text"
	PromptTextArea PromptType = "text_area"
	// PromptUsername must not be taken by another account.
	PromptUsername PromptType = "username"
	// PromptEmail must be a bare email address.
	PromptEmail PromptType = "email"
	// PromptPassword: a field "<key>_repeat" of this type must match "<key>" and
	// is not stored.
	PromptPassword PromptType = "password"
	PromptNumber   PromptType = "number"
	PromptCheckbox PromptType = "checkbox"
	// PromptDropdown and PromptRadio must be answered with one of their choices.
	PromptDropdown PromptType = "dropdown"
	PromptRadio    PromptType = "radio_button_group"
	// PromptDate is YYYY-MM-DD.
	PromptDate   PromptType = "date"
	PromptHidden PromptType = "hidden"
	// PromptStatic is text shown with the fields; it takes no answer.
	PromptStatic PromptType = "static"
)

// fieldTypes maps each prompt type to the challenge field type it asks with.
var fieldTypes = map[PromptType]string{
	PromptText: flowengine.FieldText, PromptTextArea: flowengine.FieldTextArea,
	PromptUsername: flowengine.FieldUsername, PromptEmail: flowengine.FieldEmail,
	PromptPassword: flowengine.FieldPassword, PromptNumber: flowengine.FieldNumber,
	PromptCheckbox: flowengine.FieldCheckbox, PromptDropdown: flowengine.FieldChoice,
	PromptRadio: flowengine.FieldChoice, PromptDate: flowengine.FieldDate,
	PromptHidden: flowengine.FieldHidden, PromptStatic: flowengine.FieldStatic,
}

// PromptConfig configures the prompt stage.
type PromptConfig struct {
	// Fields are the questions, declared inline (required).
	Fields []PromptField `json:"fields"`
	// ValidationPolicies name Rego policies that must all allow the answers,
	// given as input.prompt; their messages are shown as errors (default none).
	ValidationPolicies []string `json:"validation_policies,omitempty"`
}

// PromptField is one question of a prompt stage.
type PromptField struct {
	// FieldKey is the answer's key and its key in prompt_data (required).
	FieldKey string `json:"field_key"`
	// Label is shown with the field (default the field key).
	Label string `json:"label,omitempty"`
	// Type is one of the PromptType values (required).
	Type PromptType `json:"type"`
	// Required refuses an empty answer (default false).
	Required bool `json:"required,omitempty"`
	// Placeholder is shown in an empty field.
	Placeholder string `json:"placeholder,omitempty"`
	// InitialValue pre-fills the field (a static field's text).
	InitialValue string `json:"initial_value,omitempty"`
	// Order sorts the fields (default 0; equal orders keep their written order).
	Order int `json:"order,omitempty"`
	// SubText is help shown under the field.
	SubText string `json:"sub_text,omitempty"`
	// Choices are the options of a dropdown or radio_button_group: strings, or
	// {value, label} objects.
	Choices []PromptChoice `json:"choices,omitempty"`
}

// PromptChoice is one option of a dropdown or radio_button_group.
type PromptChoice struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
}

// UnmarshalJSON accepts a bare string as a choice whose label is its value.
func (c *PromptChoice) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = PromptChoice{Value: s, Label: s}
		return nil
	}
	type plain PromptChoice
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return errors.New("a choice is a string or {value, label}")
	}
	if p.Label == "" {
		p.Label = p.Value
	}
	*c = PromptChoice(p)
	return nil
}

type prompt struct{ cfg PromptConfig }

// repeatSuffix marks the second field of a password pair.
const repeatSuffix = "_repeat"

func newPrompt(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &prompt{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	if len(s.cfg.Fields) == 0 {
		return nil, errors.New("fields: at least one field is required")
	}
	seen := map[string]bool{}
	for i := range s.cfg.Fields {
		f := &s.cfg.Fields[i]
		switch {
		case f.FieldKey == "":
			return nil, fmt.Errorf("fields[%d]: field_key is required", i)
		case seen[f.FieldKey]:
			return nil, fmt.Errorf("fields[%d]: duplicate field_key %q", i, f.FieldKey)
		case fieldTypes[f.Type] == "":
			return nil, fmt.Errorf("fields[%d] (%s): unknown type %q", i, f.FieldKey, f.Type)
		case (f.Type == PromptDropdown || f.Type == PromptRadio) && len(f.Choices) == 0:
			return nil, fmt.Errorf("fields[%d] (%s): a %s needs choices", i, f.FieldKey, f.Type)
		}
		seen[f.FieldKey] = true
		if f.Label == "" {
			f.Label = f.FieldKey
		}
	}
	for _, name := range s.cfg.ValidationPolicies {
		if name == "" {
			return nil, errors.New("validation_policies: a policy name is empty")
		}
	}
	sort.SliceStable(s.cfg.Fields, func(i, j int) bool { return s.cfg.Fields[i].Order < s.cfg.Fields[j].Order })
	return s, nil
}

// PolicyNames lets the engine refuse a configuration naming a missing policy.
func (s *prompt) PolicyNames() []string { return s.cfg.ValidationPolicies }

func (s *prompt) Challenge(_ context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	previous := s.previous(sc)
	fields := make([]flowengine.Field, 0, len(s.cfg.Fields))
	for _, pf := range s.cfg.Fields {
		f := flowengine.Field{
			Key: pf.FieldKey, Type: fieldTypes[pf.Type], Label: pf.Label, Required: pf.Required && pf.Type != PromptStatic,
			Placeholder: pf.Placeholder, Value: pf.InitialValue, SubText: pf.SubText,
		}
		if v, ok := previous[pf.FieldKey]; ok && keepsAnswer(pf.Type) {
			f.Value = v
		}
		switch pf.Type {
		case PromptUsername:
			f.Autocomplete = "username"
		case PromptEmail:
			f.Autocomplete = "email"
		case PromptPassword:
			f.Autocomplete, f.Value = "new-password", ""
		case PromptRadio:
			f.Presentation = flowengine.PresentationRadio
		}
		for _, c := range pf.Choices {
			f.Choices = append(f.Choices, flowengine.Choice{Value: c.Value, Label: c.Label})
		}
		fields = append(fields, f)
	}
	return &flowengine.Challenge{Fields: fields}, nil
}

func (s *prompt) Submit(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (flowengine.Outcome, error) {
	values, errs, err := s.check(ctx, sc, answer)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if len(errs) > 0 {
		s.remember(sc, answer)
		return flowengine.Invalid(errs), nil
	}
	passed, messages, err := sc.CheckPolicies(ctx, s.cfg.ValidationPolicies, values)
	switch {
	case errors.Is(err, flowengine.ErrPolicyFailed):
		// Fail closed: a broken rule must not let an answer through.
		return flowengine.Deny(flowengine.UnavailableMessage), nil
	case err != nil:
		return flowengine.Outcome{}, err
	case !passed:
		s.remember(sc, answer)
		if len(messages) == 0 {
			messages = []string{"Your answers were not accepted."}
		}
		// Password rules are what these policies check in practice: show their
		// messages next to the (first) new password, where the user looks.
		if key := s.firstPassword(); key != "" {
			return flowengine.Invalid(map[string][]string{key: messages}), nil
		}
		return flowengine.Invalid(nil, messages...), nil
	}
	data, _ := sc.Context[flowengine.CtxPromptData].(map[string]any)
	data = maps.Clone(data)
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range values {
		if s.isRepeat(k) {
			continue // checked above; one copy of a password is enough
		}
		data[k] = v
	}
	sc.Context[flowengine.CtxPromptData] = data
	delete(sc.State, stateAnswers)
	return flowengine.Continue(), nil
}

// stateAnswers is the State key of a refused answer's non-secret values,
// shown again in the next challenge so the user need not retype them.
const stateAnswers = "previous_answers"

// keepsAnswer says whether a refused answer to a field of type t is shown
// again: never a password, nor a hidden or static field (their value is the
// configuration's, not the user's).
func keepsAnswer(t PromptType) bool {
	switch t {
	case PromptPassword, PromptHidden, PromptStatic:
		return false
	}
	return true
}

// remember keeps a refused answer's non-secret values in the stage's State
// (saved with the execution) for the next challenge. A checkbox is kept as
// "true" or "" (unchecked, even if its initial value checks it).
func (s *prompt) remember(sc *flowengine.StageContext, answer flowengine.Answer) {
	if sc.State == nil {
		return
	}
	kept := map[string]any{}
	for _, f := range s.cfg.Fields {
		if !keepsAnswer(f.Type) {
			continue
		}
		if f.Type == PromptCheckbox {
			kept[f.FieldKey] = ""
			if answer.Bool(f.FieldKey) {
				kept[f.FieldKey] = "true"
			}
			continue
		}
		if v, ok := answer[f.FieldKey]; ok {
			kept[f.FieldKey] = strings.TrimSpace(v)
		}
	}
	sc.State[stateAnswers] = kept
}

// previous reads what remember kept (nil if nothing); after the execution's
// JSON round trip the map is a map[string]any.
func (s *prompt) previous(sc *flowengine.StageContext) map[string]string {
	if sc == nil {
		return nil
	}
	raw, _ := sc.State[stateAnswers].(map[string]any)
	if len(raw) == 0 {
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if str, ok := v.(string); ok {
			out[k] = str
		}
	}
	return out
}

// check validates each declared field's answer and returns the typed values:
// only declared keys, never a static field. An empty optional answer is left
// out (a checkbox is false), so it does not overwrite what a later user_write
// would keep.
func (s *prompt) check(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (map[string]any, map[string][]string, error) {
	values := map[string]any{}
	errs := map[string][]string{}
	fail := func(key, msg string) { errs[key] = append(errs[key], msg) }
	for _, f := range s.cfg.Fields {
		raw, given := answer[f.FieldKey]
		if f.Type == PromptHidden && !given {
			raw = f.InitialValue
		}
		text := strings.TrimSpace(raw)
		switch {
		case f.Type == PromptStatic:
			continue
		case f.Type == PromptCheckbox:
			values[f.FieldKey] = answer.Bool(f.FieldKey)
			continue
		case f.Type == PromptPassword && raw == "" || f.Type != PromptPassword && text == "":
			if f.Required {
				fail(f.FieldKey, "This field is required.")
			}
			continue
		}
		switch f.Type {
		case PromptPassword:
			values[f.FieldKey] = raw // never trimmed: spaces are part of it
			continue
		case PromptUsername:
			msg, err := usernameProblem(ctx, sc, text)
			if err != nil {
				return nil, nil, err
			}
			if msg != "" {
				fail(f.FieldKey, msg)
			}
		case PromptEmail:
			if err := flowengine.CheckEmail(text); err != nil {
				fail(f.FieldKey, "Enter a valid email address.")
			}
		case PromptNumber:
			n, err := strconv.ParseFloat(text, 64)
			if err != nil {
				fail(f.FieldKey, "Enter a number.")
			}
			values[f.FieldKey] = n
			continue
		case PromptDate:
			if _, err := time.Parse(time.DateOnly, text); err != nil {
				fail(f.FieldKey, "Enter a date as YYYY-MM-DD.")
			}
		case PromptDropdown, PromptRadio:
			if !slices.ContainsFunc(f.Choices, func(c PromptChoice) bool { return c.Value == text }) {
				fail(f.FieldKey, "Choose one of the options.")
			}
		}
		values[f.FieldKey] = text
	}
	for _, f := range s.cfg.Fields {
		if base := strings.TrimSuffix(f.FieldKey, repeatSuffix); s.isRepeat(f.FieldKey) && errs[f.FieldKey] == nil {
			if answer[base] != answer[f.FieldKey] {
				fail(f.FieldKey, "The passwords do not match.")
			}
		}
	}
	return values, errs, nil
}

// isRepeat says whether key is the second field of a password pair.
func (s *prompt) isRepeat(key string) bool {
	base, ok := strings.CutSuffix(key, repeatSuffix)
	if !ok {
		return false
	}
	var repeat, first bool
	for _, f := range s.cfg.Fields {
		repeat = repeat || f.FieldKey == key && f.Type == PromptPassword
		first = first || f.FieldKey == base && f.Type == PromptPassword
	}
	return repeat && first
}

// usernameProblem says why name cannot be chosen ("" if it can): not a valid
// username, or another account's. The pending user may keep their own.
func usernameProblem(ctx context.Context, sc *flowengine.StageContext, name string) (string, error) {
	if err := flowengine.CheckUsername(name); err != nil {
		return sentence(err), nil
	}
	other, err := sc.Store.GetUserByUsername(ctx, name)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("looking up username: %w", err)
	}
	if pending, _ := sc.Context[flowengine.CtxPendingUser].(string); pending != "" && pending == other.ID {
		return "", nil
	}
	return "This username is already taken.", nil
}

// Interface guard: the engine checks validation_policies against loaded policies.
var _ flowengine.PolicyUser = (*prompt)(nil)

// firstPassword is the key of the first password field that is not a
// "_repeat" confirmation ("" if none).
func (s *prompt) firstPassword() string {
	for _, f := range s.cfg.Fields {
		if f.Type == PromptPassword && !s.isRepeat(f.FieldKey) {
			return f.FieldKey
		}
	}
	return ""
}
