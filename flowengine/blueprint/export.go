package blueprint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/flowgate/flowgate/flowengine"
)

// Format is a serialization of the blueprint document.
type Format string

// Formats.
const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// Export writes the flows with these slugs (all flows if none) with every stage and
// policy they reference, so the file imports anywhere. Output is deterministic:
// entries sorted by slug or name, keys in a fixed order, defaults omitted.
func Export(cfg *flowengine.Config, format Format, slugs ...string) ([]byte, error) {
	doc, err := document(cfg, slugs)
	if err != nil {
		return nil, err
	}
	return Encode(doc, format)
}

// Encode serializes a document.
func Encode(doc *Document, format Format) ([]byte, error) {
	switch format {
	case JSON:
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(out, '\n'), nil
	case YAML, "":
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown format %q (want yaml or json)", format)
}

// Convert re-encodes a blueprint file in another format after checking its shape.
// Unlike Export it keeps what the file says beyond the configuration: entries it
// removes (state: absent) and which seed users are authoritative.
func Convert(file string, data []byte, to Format) ([]byte, error) {
	bp, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	doc, err := document(bp.Config, nil)
	if err != nil {
		return nil, err
	}
	for _, name := range sorted(bp.Remove.Policies) {
		doc.Policies = append(doc.Policies, PolicyEntry{Name: name, State: StateAbsent})
	}
	for _, name := range sorted(bp.Remove.Stages) {
		doc.Stages = append(doc.Stages, StageEntry{Name: name, State: StateAbsent})
	}
	for _, slug := range sorted(bp.Remove.Flows) {
		doc.Flows = append(doc.Flows, FlowEntry{Slug: slug, State: StateAbsent})
	}
	doc.Users = userEntries(bp.Users)
	doc.Metadata = bp.Metadata
	return Encode(doc, to)
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func document(cfg *flowengine.Config, slugs []string) (*Document, error) {
	flows := map[string]flowengine.Flow{}
	for _, f := range cfg.Flows {
		flows[f.Slug] = f
	}
	if len(slugs) == 0 {
		for s := range flows {
			slugs = append(slugs, s)
		}
	}
	sort.Strings(slugs)
	stages := map[string]flowengine.StageDef{}
	for _, s := range cfg.Stages {
		stages[s.Name] = s
	}
	policies := map[string]flowengine.Policy{}
	for _, p := range cfg.Policies {
		policies[p.Name] = p
	}
	exportAll := len(slugs) == len(flows)
	doc := &Document{Version: 1}
	usedStages, usedPolicies := map[string]bool{}, map[string]bool{}
	for _, slug := range slugs {
		f, ok := flows[slug]
		if !ok {
			return nil, fmt.Errorf("exporting flow %q: %w", slug, flowengine.ErrNotFound)
		}
		doc.Flows = append(doc.Flows, flowEntry(f))
		for _, b := range f.Policies {
			usedPolicies[b.Policy] = b.Policy != ""
		}
		for _, sb := range f.Stages {
			usedStages[sb.Stage] = true
			for _, b := range sb.Policies {
				usedPolicies[b.Policy] = b.Policy != ""
			}
		}
	}
	// A stage may evaluate policies itself (a prompt's validation_policies):
	// those go with it, or the export would not import on its own.
	for name := range usedStages {
		for _, p := range stagePolicies(stages[name]) {
			usedPolicies[p] = true
		}
	}
	if len(slugs) == 1 {
		doc.Metadata = &Metadata{Name: slugs[0]}
	}
	for _, name := range sortedKeys(stages) {
		if exportAll || usedStages[name] {
			s := stages[name]
			doc.Stages = append(doc.Stages, StageEntry{Name: s.Name, Type: s.Type, Config: s.Config})
		}
	}
	for _, name := range sortedKeys(policies) {
		if exportAll || usedPolicies[name] {
			p := policies[name]
			doc.Policies = append(doc.Policies, PolicyEntry{Name: p.Name, Rego: p.Rego})
		}
	}
	return doc, nil
}

// stagePolicies are the policies a stage's config names in validation_policies.
// The config is read directly rather than through the stage's factory, so a
// blueprint needs no stage registry, and a stage type that does not exist here
// still exports what it names. Non-string entries are left for the stage's own
// config check to refuse.
func stagePolicies(def flowengine.StageDef) []string {
	var out []string
	switch v := def.Config["validation_policies"].(type) {
	case []string:
		out = v
	case []any:
		for _, p := range v {
			if s, ok := p.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func flowEntry(f flowengine.Flow) FlowEntry {
	e := FlowEntry{
		Slug: f.Slug, Name: f.Name, Title: f.Title, Designation: string(f.Designation), Order: f.Order,
		DeniedAction:     omitDefault(string(f.DeniedAction), string(flowengine.DeniedMessageContinue)),
		PolicyEngineMode: omitDefault(string(f.PolicyEngineMode), string(flowengine.ModeAny)),
		Authentication:   omitDefault(string(f.Authentication), string(flowengine.AuthNone)),
		Policies:         bindingEntries(f.Policies),
	}
	for _, sb := range f.Stages {
		e.Stages = append(e.Stages, StageBindingEntry{
			Stage: sb.Stage, Order: sb.Order,
			EvaluateOnPlan:        boolIfNot(sb.EvaluateOnPlan, false),
			ReEvaluatePolicies:    boolIfNot(sb.ReEvaluatePolicies, true),
			PolicyEngineMode:      omitDefault(string(sb.PolicyEngineMode), string(flowengine.ModeAny)),
			InvalidResponseAction: omitDefault(string(sb.InvalidResponseAction), string(flowengine.InvalidRetry)),
			Policies:              bindingEntries(sb.Policies),
		})
	}
	return e
}

func bindingEntries(in []flowengine.PolicyBinding) []BindingEntry {
	var out []BindingEntry
	for _, b := range in {
		e := BindingEntry{
			Policy: b.Policy, Group: b.Group, User: b.User, Order: b.Order,
			Enabled: boolIfNot(b.Enabled, true),
			Negate:  boolIfNot(b.Negate, false),
		}
		if b.FailureResultSet {
			// Written whenever chosen: without it an error stops the flow.
			v := b.FailureResult
			e.FailureResult = &v
		}
		if b.Timeout != 0 && b.Timeout != flowengine.DefaultPolicyTimeout {
			e.Timeout = b.Timeout.String()
		}
		out = append(out, e)
	}
	return out
}

// userEntries writes seed users; an authoritative one (state: present) with only
// the fields it names, so that it overwrites no more than the original did.
func userEntries(seeds []flowengine.SeedUser) []UserEntry {
	var out []UserEntry
	for _, seed := range seeds {
		u := seed.User
		full := UserEntry{
			Username: u.Username, Email: u.Email, Name: u.Name, IsActive: boolIfNot(u.IsActive, true),
			PasswordHash: u.PasswordHash, Groups: u.Groups, Attributes: u.Attributes,
		}
		if !seed.Authoritative {
			out = append(out, full)
			continue
		}
		e := UserEntry{Username: u.Username, State: StatePresent}
		for _, f := range seed.Fields {
			switch f {
			case "email":
				e.Email = full.Email
			case "name":
				e.Name = full.Name
			case "is_active":
				active := u.IsActive // named: written even when it is the default
				e.IsActive = &active
			case "password_hash":
				e.PasswordHash = full.PasswordHash
			case "groups":
				e.Groups = full.Groups
			case "attributes":
				e.Attributes = full.Attributes
			}
		}
		out = append(out, e)
	}
	return out
}

func omitDefault(v, def string) string {
	if v == def {
		return ""
	}
	return v
}

func boolIfNot(v, def bool) *bool {
	if v == def {
		return nil
	}
	return &v
}
