package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint/authentik"
)

// Limits on outside input. The entry counts are checked on the YAML tree before
// anything is decoded or any Rego compiled (see checkLimits). They sit an order
// of magnitude above the largest real installations (tens of flows, stages and
// policies; seed users bootstrap a few accounts, the rest live in the store)
// while keeping the worst file cheap: 1000 policies compile in well under a
// second and far below 512 MiB.
const (
	MaxSize     = 4 << 20  // bytes in one blueprint file
	MaxDepth    = 32       // nesting of YAML/JSON collections
	MaxPolicies = 1000     // policies in one file
	MaxStages   = 1000     // stages in one file
	MaxFlows    = 1000     // flows in one file
	MaxUsers    = 10000    // seed users in one file
	MaxBindings = 100      // a flow's policy bindings, its stage bindings, and each stage binding's policy bindings
	MaxRegoSize = 64 << 10 // bytes in one policy's Rego (as policies.MaxModuleSize)
)

// ErrInvalid marks every blueprint problem; the message names file, line and entry.
var ErrInvalid = errors.New("invalid blueprint")

// Error is one problem in a blueprint file.
type Error struct {
	File  string
	Line  int    // 0 if unknown
	Entry string // e.g. "flow default-authentication"; empty for file-level problems
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Entry != "" {
		b.WriteString(": " + e.Entry)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Blueprint is a parsed file: the configuration and seed users it defines, the
// entries it removes (state: absent), and where each entry was written.
type Blueprint struct {
	File     string
	Metadata *Metadata
	Config   *flowengine.Config
	Remove   flowengine.Removal
	Users    []flowengine.SeedUser
	// Warnings name what an import of an authentik blueprint left out or
	// cannot run; empty for flowgate's own format.
	Warnings []Warning
	lines    map[string]int // "flow x" → line of its first definition
	last     map[string]int // … and of its last, for "defined twice"
	rego     map[string]regoPos
}

type regoPos struct {
	line  int
	block bool // a | or > block: Rego line n is at line+n
}

// Parse reads a YAML or JSON blueprint. It checks the shape (unknown keys, types,
// required fields, duplicates within the file) but not references to entries
// defined elsewhere; Apply and Check do that against the live configuration.
// An authentik blueprint or flow export (entries of models) is converted to
// flowgate's format first (package authentik); bp.Warnings name what it had
// that flowgate leaves out or cannot run.
func Parse(file string, data []byte) (*Blueprint, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is %d bytes, over the %d byte limit", len(data), MaxSize)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "file is empty"}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Msg: "more than one document in the file"}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if err := checkDepth(doc, 0); err != nil {
		return nil, &Error{File: file, Line: err.line, Msg: err.msg}
	}
	if err := checkLimits(file, doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: doc.Line, Msg: "a blueprint must be a mapping with version, policies, stages, flows, users"}
	}
	var warnings []Warning
	if authentik.IsBlueprint(doc) {
		// authentik's format (entries of models): converted to ours, with the
		// lines of its entries, and checked as if it had been written so.
		native, warns, err := authentik.Convert(doc)
		if err != nil {
			return nil, authentikError(file, err)
		}
		for _, w := range warns {
			warnings = append(warnings, Warning{File: file, Line: w.Line, Entry: w.Entry, Kind: string(w.Kind), Msg: w.Msg})
		}
		doc = native
		if err := checkLimits(file, doc); err != nil {
			return nil, err
		}
	}
	if err := checkKnown(doc, reflect.TypeOf(Document{}), ""); err != nil {
		err.File = file
		return nil, err
	}
	var d Document
	if err := doc.Decode(&d); err != nil {
		return nil, yamlError(file, err)
	}
	if d.Version != 1 {
		line := doc.Line
		if v := mapValue(doc, "version"); v != nil {
			line = v.Line
		}
		return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("version must be 1, got %d", d.Version)}
	}
	bp := &Blueprint{File: file, lines: map[string]int{}, last: map[string]int{}, rego: map[string]regoPos{}}
	bp.indexLines(doc)
	cfg, users, err := bp.convert(&d, doc)
	if err != nil {
		return nil, err
	}
	bp.Config, bp.Users, bp.Metadata = cfg, users, d.Metadata
	bp.Warnings = warnings
	return bp, nil
}

// Warning is something an import did not carry over as written: an entry or
// setting of an authentik blueprint that flowgate has no counterpart for, or a
// policy it cannot run. Kind is a short stable name (see package authentik).
type Warning struct {
	File  string
	Line  int
	Entry string
	Kind  string
	Msg   string
}

func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		fmt.Fprintf(&b, ":%d", w.Line)
	}
	if w.Entry != "" {
		b.WriteString(": " + w.Entry)
	}
	fmt.Fprintf(&b, ": warning: %s (%s)", w.Msg, w.Kind)
	return b.String()
}

// Warnings are every file's warnings, in file order.
func (s Set) Warnings() []Warning {
	var out []Warning
	for _, bp := range s {
		out = append(out, bp.Warnings...)
	}
	return out
}

func authentikError(file string, err error) error {
	var ae *authentik.Error
	if errors.As(err, &ae) {
		return &Error{File: file, Line: ae.Line, Entry: ae.Entry, Msg: ae.Msg}
	}
	return &Error{File: file, Msg: err.Error()}
}

func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = strings.TrimPrefix(te.Errors[0], "yaml: ")
	}
	if strings.HasPrefix(msg, "line ") {
		fmt.Sscanf(msg, "line %d:", &line)
		if i := strings.Index(msg, ": "); i > 0 {
			msg = msg[i+2:]
		}
	}
	return &Error{File: file, Line: line, Msg: msg}
}

type depthError struct {
	line int
	msg  string
}

func checkDepth(n *yaml.Node, depth int) *depthError {
	if depth > MaxDepth {
		return &depthError{n.Line, fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
	}
	if n.Kind == yaml.AliasNode {
		return &depthError{n.Line, "YAML aliases are not allowed in blueprints"}
	}
	for _, c := range n.Content {
		if err := checkDepth(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// checkKnown rejects keys that t has no field for, recursively, with the key's line.
func checkKnown(n *yaml.Node, t reflect.Type, path string) *Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{Line: n.Line, Msg: fmt.Sprintf("%s must be a mapping", describe(path))}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				return &Error{Line: k.Line, Msg: fmt.Sprintf("duplicate key %q", k.Value)}
			}
			seen[k.Value] = true
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				return &Error{Line: k.Line, Msg: fmt.Sprintf("unknown field %q%s", k.Value, in(path))}
			}
			if err := checkKnown(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{Line: n.Line, Msg: fmt.Sprintf("%s must be a list", describe(path))}
		}
		for i, c := range n.Content {
			if err := checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func describe(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// indexLines remembers the line of every named entry and of every Rego source.
func (bp *Blueprint) indexLines(doc *yaml.Node) {
	for _, sec := range []struct{ key, kind, name string }{
		{"policies", "policy", "name"}, {"stages", "stage", "name"}, {"flows", "flow", "slug"}, {"users", "user", "username"},
	} {
		list := mapValue(doc, sec.key)
		if list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for _, entry := range list.Content {
			nameNode := mapValue(entry, sec.name)
			if nameNode == nil {
				continue
			}
			key := sec.kind + " " + nameNode.Value
			if _, dup := bp.lines[key]; !dup {
				bp.lines[key] = entry.Line
			}
			bp.last[key] = entry.Line
			if sec.kind == "policy" {
				if r := mapValue(entry, "rego"); r != nil {
					block := r.Style == yaml.LiteralStyle || r.Style == yaml.FoldedStyle
					bp.rego[nameNode.Value] = regoPos{line: r.Line, block: block}
				}
			}
		}
	}
}

func (bp *Blueprint) errorAt(kind, name, msg string) *Error {
	entry := kind + " " + name
	return &Error{File: bp.File, Line: bp.lines[entry], Entry: entry, Msg: msg}
}

// convert turns the document into engine values; doc is its YAML tree, for
// which keys each user entry names.
func (bp *Blueprint) convert(d *Document, doc *yaml.Node) (*flowengine.Config, []flowengine.SeedUser, error) {
	cfg := &flowengine.Config{}
	seen := map[string]bool{}
	dup := func(kind, name string) error {
		if name == "" {
			return &Error{File: bp.File, Entry: kind, Msg: "an entry has no name"}
		}
		if seen[kind+" "+name] {
			e := bp.errorAt(kind, name, "defined twice in this file")
			e.Line = bp.last[kind+" "+name]
			return e
		}
		seen[kind+" "+name] = true
		return nil
	}
	// absent checks an entry's state and reports whether it removes the entry.
	absent := func(kind, name string, st State) (bool, error) {
		if err := checkState(st, entryStates); err != nil {
			return false, bp.errorAt(kind, name, err.Error())
		}
		return st == StateAbsent, nil
	}
	for _, p := range d.Policies {
		if err := dup("policy", p.Name); err != nil {
			return nil, nil, err
		}
		gone, err := absent("policy", p.Name, p.State)
		if err != nil {
			return nil, nil, err
		}
		if gone {
			bp.Remove.Policies = append(bp.Remove.Policies, p.Name)
			continue
		}
		cfg.Policies = append(cfg.Policies, flowengine.Policy{Name: p.Name, Rego: p.Rego})
	}
	for _, s := range d.Stages {
		if err := dup("stage", s.Name); err != nil {
			return nil, nil, err
		}
		gone, err := absent("stage", s.Name, s.State)
		if err != nil {
			return nil, nil, err
		}
		if gone {
			bp.Remove.Stages = append(bp.Remove.Stages, s.Name)
			continue
		}
		conf, err := normalizeConfig(s.Config)
		if err != nil {
			return nil, nil, bp.errorAt("stage", s.Name, "config: "+err.Error())
		}
		cfg.Stages = append(cfg.Stages, flowengine.StageDef{Name: s.Name, Type: s.Type, Config: conf})
	}
	for _, f := range d.Flows {
		if err := dup("flow", f.Slug); err != nil {
			return nil, nil, err
		}
		gone, err := absent("flow", f.Slug, f.State)
		if err != nil {
			return nil, nil, err
		}
		if gone {
			bp.Remove.Flows = append(bp.Remove.Flows, f.Slug)
			continue
		}
		flow, err := convertFlow(f)
		if err != nil {
			return nil, nil, bp.errorAt("flow", f.Slug, err.Error())
		}
		cfg.Flows = append(cfg.Flows, flow)
	}
	var userNodes []*yaml.Node
	if list := mapValue(doc, "users"); list != nil && list.Kind == yaml.SequenceNode {
		userNodes = list.Content
	}
	var users []flowengine.SeedUser
	for i, u := range d.Users {
		if err := dup("user", flowengine.NormalizeKey(u.Username)); err != nil {
			return nil, nil, err
		}
		if u.State == StateAbsent {
			// Deleting an account (and its sessions) stays an explicit admin act.
			return nil, nil, bp.errorAt("user", u.Username,
				"state: absent is not supported for users; delete a user with caddy flowgate user delete")
		}
		if err := checkState(u.State, userStates); err != nil {
			return nil, nil, bp.errorAt("user", u.Username, err.Error())
		}
		// The same rules as every other path that writes users, so a seed user
		// can always be managed through the admin API afterwards.
		if err := flowengine.CheckUsername(u.Username); err != nil {
			return nil, nil, bp.errorAt("user", u.Username, err.Error())
		}
		if err := flowengine.CheckEmail(u.Email); err != nil {
			return nil, nil, bp.errorAt("user", u.Username, err.Error())
		}
		// A placeholder or mangled hash is refused here, where the file and
		// line are known, rather than failing every sign-in of the user.
		if h := u.PasswordHash; h != "" {
			if err := flowengine.CheckPasswordHash(h); err != nil {
				return nil, nil, bp.errorAt("user", u.Username, "password_hash: "+err.Error())
			}
		}
		attrs, err := normalizeConfig(u.Attributes)
		if err != nil {
			return nil, nil, bp.errorAt("user", u.Username, "attributes: "+err.Error())
		}
		seed := flowengine.SeedUser{
			User: &flowengine.User{
				Username: u.Username, Email: u.Email, Name: u.Name, IsActive: boolOr(u.IsActive, true),
				PasswordHash: u.PasswordHash, Groups: u.Groups, Attributes: attrs,
			},
			Authoritative: u.State == StatePresent,
		}
		if seed.Authoritative && i < len(userNodes) {
			seed.Fields = userFields(userNodes[i])
		}
		users = append(users, seed)
	}
	return cfg, users, nil
}

func checkState(st State, valid []State) error {
	if st == "" {
		return nil
	}
	names := make([]string, len(valid))
	for i, v := range valid {
		if st == v {
			return nil
		}
		names[i] = string(v)
	}
	return fmt.Errorf("state: unknown value %q (want one of %s)", st, strings.Join(names, ", "))
}

// userFields lists the keys a user entry names that a seed can overwrite (the
// username identifies the user, state is not a field), in the entry's order.
func userFields(entry *yaml.Node) []string {
	var out []string
	for i := 0; i+1 < len(entry.Content); i += 2 {
		switch k := entry.Content[i].Value; k {
		case "username", "state":
		default:
			out = append(out, k)
		}
	}
	return out
}

// normalizeConfig passes a config map through JSON so that values have the same
// types whether they came from YAML, JSON or the store (numbers are float64).
func normalizeConfig(m map[string]any) (map[string]any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func convertFlow(f FlowEntry) (flowengine.Flow, error) {
	flow := flowengine.Flow{
		Slug: f.Slug, Name: f.Name, Title: f.Title, Order: f.Order,
		Designation:      flowengine.Designation(f.Designation),
		DeniedAction:     flowengine.DeniedAction(f.DeniedAction),
		PolicyEngineMode: flowengine.EngineMode(f.PolicyEngineMode),
		Authentication:   flowengine.AuthRequirement(f.Authentication),
	}
	if flow.Title == "" {
		flow.Title = flow.Name
	}
	var err error
	if flow.Policies, err = convertBindings(f.Policies, "policies"); err != nil {
		return flow, err
	}
	for i, sb := range f.Stages {
		b := flowengine.StageBinding{
			Stage: sb.Stage, Order: sb.Order,
			EvaluateOnPlan:        boolOr(sb.EvaluateOnPlan, false),
			ReEvaluatePolicies:    boolOr(sb.ReEvaluatePolicies, true),
			PolicyEngineMode:      flowengine.EngineMode(sb.PolicyEngineMode),
			InvalidResponseAction: flowengine.InvalidResponseAction(sb.InvalidResponseAction),
		}
		if b.Policies, err = convertBindings(sb.Policies, fmt.Sprintf("stages[%d].policies", i)); err != nil {
			return flow, err
		}
		flow.Stages = append(flow.Stages, b)
	}
	return flow, nil
}

func convertBindings(in []BindingEntry, path string) ([]flowengine.PolicyBinding, error) {
	var out []flowengine.PolicyBinding
	for i, b := range in {
		pb := flowengine.PolicyBinding{
			Policy: b.Policy, Group: b.Group, User: b.User, Order: b.Order,
			Enabled: boolOr(b.Enabled, true), Negate: boolOr(b.Negate, false),
			FailureResult: boolOr(b.FailureResult, false), FailureResultSet: b.FailureResult != nil,
			Timeout: flowengine.DefaultPolicyTimeout,
		}
		if b.Timeout != "" {
			d, err := time.ParseDuration(b.Timeout)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%s[%d].timeout: %q is not a positive duration like 5s", path, i, b.Timeout)
			}
			pb.Timeout = d
		}
		out = append(out, pb)
	}
	return out, nil
}
