package authentik

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxEntries bounds the entries of one authentik file, checked before any is
// resolved. The flowgate limits (policies, stages, flows in one file) apply
// to the converted document as well.
const MaxEntries = 20000

// Error is a problem that rejects the whole file: Line is in the authentik
// file, Entry names the entry (its model and name or id).
type Error struct {
	Line  int
	Entry string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Entry != "" {
		b.WriteString(e.Entry + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// WarningKind says what a warning is about; tests and tools match on it.
type WarningKind string

// Warning kinds: every entry or setting the import does not carry over, and
// every policy it cannot run, is reported under one of these.
const (
	// WarnLeftOut: an entry whose model flowgate has no counterpart for
	// (sources, providers, applications, brands, outposts, …) was left out.
	WarnLeftOut WarningKind = "left-out"
	// WarnSetting: settings flowgate has no counterpart for were left out.
	WarnSetting WarningKind = "unknown-setting"
	// WarnPython: a Python expression policy that is not in the translation
	// table was imported as a policy that errors.
	WarnPython WarningKind = "python-policy"
	// WarnPolicy: another policy type flowgate cannot evaluate was imported as
	// a policy that errors.
	WarnPolicy WarningKind = "untranslated-policy"
	// WarnEnv: !Env was resolved at import, so a converted file holds the value.
	WarnEnv WarningKind = "env"
	// WarnCondition: an entry's conditions were false, so it was skipped.
	WarnCondition WarningKind = "condition-false"
)

// Warning is something the import could not carry over as it was.
type Warning struct {
	Line  int
	Entry string
	Kind  WarningKind
	Msg   string
}

func (w Warning) String() string {
	var b strings.Builder
	if w.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", w.Line)
	}
	if w.Entry != "" {
		b.WriteString(w.Entry + ": ")
	}
	fmt.Fprintf(&b, "%s (%s)", w.Msg, w.Kind)
	return b.String()
}

// IsBlueprint reports whether doc, a blueprint's top-level mapping, is an
// authentik blueprint or flow export: one with entries.
func IsBlueprint(doc *yaml.Node) bool {
	return doc != nil && doc.Kind == yaml.MappingNode && mapValue(doc, "entries") != nil
}

// kind is what an entry becomes.
type kind int

const (
	kindOther kind = iota
	kindFlow
	kindStageBinding
	kindPolicyBinding
	kindStage
	kindPrompt
	kindPolicy
	kindSecret
	kindGroup
	kindUser
	kindMeta
)

// entry is one authentik entry with its tags resolved.
type entry struct {
	index  int
	line   int
	model  string
	id     string
	state  string
	kind   kind
	stype  string // stage or policy type, for kindStage and kindPolicy
	name   string // flow slug, stage/policy/group/secret name, prompt field key
	ident  *yaml.Node
	attrs  *yaml.Node
	fields map[string]any // identifiers and attrs, attrs winning
	lines  map[string]int // line of each field
	skip   bool           // its conditions are false
	used   bool           // a stage refers to it (secrets, prompts)
}

func (e *entry) describe() string {
	name := e.name
	if name == "" {
		name = e.id
	}
	if name == "" {
		return fmt.Sprintf("%s (entry %d)", e.model, e.index+1)
	}
	return fmt.Sprintf("%s %q", e.model, name)
}

// line of a field, or of the entry.
func (e *entry) lineOf(key string) int {
	if l := e.lines[key]; l > 0 {
		return l
	}
	return e.line
}

// matches compares !Find conditions with the entry's literal identifiers and
// attributes.
func (e *entry) matches(conds map[string]any) bool {
	if len(conds) == 0 {
		return false
	}
	for k, want := range conds {
		var got *yaml.Node
		for _, n := range []*yaml.Node{e.ident, e.attrs} {
			if v := mapValue(n, k); v != nil && got == nil {
				got = v
			}
		}
		if got == nil || got.Kind != yaml.ScalarNode || isCustomTag(got) {
			return false
		}
		if got.Value != pyStr(want) {
			return false
		}
	}
	return true
}

type converter struct {
	entries  []*entry
	byID     map[string]*entry
	byPK     map[string]*entry
	raw      []*yaml.Node // the entries' nodes, as entries
	warnings []Warning
	warned   map[string]bool
}

func (c *converter) warn(e *entry, line int, k WarningKind, msg string) {
	w := Warning{Line: line, Kind: k, Msg: msg}
	if e != nil {
		w.Entry = e.describe()
	}
	key := w.String()
	if c.warned[key] {
		return
	}
	c.warned[key] = true
	c.warnings = append(c.warnings, w)
}

func fail(e *entry, line int, format string, args ...any) *Error {
	err := &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
	if e != nil {
		err.Entry = e.describe()
	}
	return err
}

// Convert reads an authentik blueprint (the YAML tree of the whole file) and
// returns the same configuration as a flowgate blueprint tree (version,
// metadata, policies, stages, flows) whose nodes carry the lines of the
// authentik entries they come from, so later errors point into the file.
// Warnings name what was left out or cannot run.
func Convert(doc *yaml.Node) (*yaml.Node, []Warning, error) {
	if !IsBlueprint(doc) {
		return nil, nil, &Error{Line: doc.Line, Msg: "not an authentik blueprint (no entries)"}
	}
	c := &converter{byID: map[string]*entry{}, byPK: map[string]*entry{}, warned: map[string]bool{}}
	var meta *nMetadata
	var contextNode *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "version":
			if v.Value != "1" {
				return nil, nil, &Error{Line: v.Line, Msg: fmt.Sprintf("version must be 1, got %s", v.Value)}
			}
		case "metadata":
			if name := mapValue(v, "name"); name != nil && name.Kind == yaml.ScalarNode {
				meta = &nMetadata{Name: name.Value}
			}
		case "context":
			contextNode = v
		case "entries":
			if err := c.readEntries(v); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, &Error{Line: k.Line, Msg: fmt.Sprintf("unknown field %q (an authentik blueprint has version, metadata, context, entries)", k.Value)}
		}
	}
	if meta == nil {
		meta = &nMetadata{}
	}
	meta.Description = "imported from an authentik blueprint"
	ctx := map[string]any{}
	if contextNode != nil {
		r := &resolver{c: c}
		v, err := r.value(contextNode)
		if err != nil {
			return nil, nil, err
		}
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, nil, &Error{Line: contextNode.Line, Msg: "context must be a mapping"}
		}
		ctx = m
	}
	if err := c.resolve(ctx); err != nil {
		return nil, nil, err
	}
	out, err := c.build()
	if err != nil {
		return nil, nil, err
	}
	out.doc.Metadata = meta
	node, err := out.node()
	if err != nil {
		return nil, nil, err
	}
	sort.SliceStable(c.warnings, func(i, j int) bool { return c.warnings[i].Line < c.warnings[j].Line })
	return node, c.warnings, nil
}

// readEntries reads the entries (a list, or a mapping of named lists) without
// resolving their tags, so that !KeyOf and !Find can see every entry.
func (c *converter) readEntries(n *yaml.Node) error {
	var list []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		list = n.Content
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if n.Content[i].Kind != yaml.SequenceNode {
				return &Error{Line: n.Content[i].Line, Msg: "entries: each section must be a list"}
			}
			list = append(list, n.Content[i].Content...)
		}
	default:
		return &Error{Line: n.Line, Msg: "entries must be a list"}
	}
	if len(list) > MaxEntries {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("%d entries, over the limit of %d in one file", len(list), MaxEntries)}
	}
	for i, en := range list {
		if en.Kind != yaml.MappingNode {
			return &Error{Line: en.Line, Msg: fmt.Sprintf("entries[%d] must be a mapping", i)}
		}
		e := &entry{index: i, line: en.Line, state: "present", lines: map[string]int{}}
		for j := 0; j+1 < len(en.Content); j += 2 {
			k, v := en.Content[j], en.Content[j+1]
			switch k.Value {
			case "model":
				if v.Kind != yaml.ScalarNode || isCustomTag(v) {
					return &Error{Line: v.Line, Msg: fmt.Sprintf("entries[%d]: model must be a plain string", i)}
				}
				e.model = normalizeModel(v.Value)
			case "id":
				e.id = v.Value
			case "identifiers":
				e.ident = v
			case "attrs":
				e.attrs = v
			case "state", "conditions", "permissions":
				// resolved later
			default:
				return &Error{Line: k.Line, Msg: fmt.Sprintf("entries[%d]: unknown field %q", i, k.Value)}
			}
		}
		if e.model == "" {
			return &Error{Line: en.Line, Msg: fmt.Sprintf("entries[%d]: model is required", i)}
		}
		if e.id != "" {
			if prev := c.byID[e.id]; prev != nil {
				return &Error{Line: en.Line, Msg: fmt.Sprintf("entries[%d]: id %q is also used by the entry on line %d", i, e.id, prev.line)}
			}
			c.byID[e.id] = e
		}
		// Older exports name each other by primary key (a UUID).
		for _, src := range []*yaml.Node{e.ident, e.attrs} {
			for _, key := range []string{"pk", "pbm_uuid", "policybindingmodel_ptr_id"} {
				if v := mapValue(src, key); v != nil && v.Kind == yaml.ScalarNode && !isCustomTag(v) && v.Value != "" {
					c.byPK[strings.ToLower(v.Value)] = e
				}
			}
		}
		c.entries = append(c.entries, e)
		e.kind, e.stype = classify(e.model)
		// Names for messages before anything is resolved.
		for _, key := range []string{"slug", "name", "field_key", "username"} {
			for _, src := range []*yaml.Node{e.ident, e.attrs} {
				if v := mapValue(src, key); v != nil && v.Kind == yaml.ScalarNode && !isCustomTag(v) && e.name == "" {
					e.name = v.Value
				}
			}
		}
	}
	c.raw = list
	return nil
}

func isCustomTag(n *yaml.Node) bool {
	return strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!")
}

// normalizeModel accepts model names in any letter case.
func normalizeModel(m string) string { return strings.ToLower(strings.TrimSpace(m)) }

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// resolve evaluates every entry's state, conditions, identifiers and
// attributes.
func (c *converter) resolve(ctx map[string]any) error {
	for i, e := range c.entries {
		r := &resolver{c: c, context: ctx, e: e}
		en := c.raw[i]
		if n := mapValue(en, "conditions"); n != nil {
			v, err := r.value(n)
			if err != nil {
				return err
			}
			list, ok := v.([]any)
			if !ok && v != nil {
				return fail(e, n.Line, "conditions must be a list")
			}
			for _, cond := range list {
				if !truthy(cond) {
					e.skip = true
				}
			}
			if e.skip {
				c.warn(e, n.Line, WarnCondition, "its conditions are false, so it was skipped")
				continue
			}
		}
		if n := mapValue(en, "state"); n != nil {
			v, err := r.value(n)
			if err != nil {
				return err
			}
			s, _ := v.(string)
			switch s {
			case "present", "created", "must_created":
				e.state = "present"
			case "absent":
				e.state = "absent"
			default:
				return fail(e, n.Line, "state: unknown value %q (want present, created, must_created, absent)", pyStr(v))
			}
		}
		if n := mapValue(en, "permissions"); n != nil && len(n.Content) > 0 {
			c.warn(e, n.Line, WarnSetting, "permissions were left out: flowgate has no object permissions")
		}
		e.fields = map[string]any{}
		for _, src := range []*yaml.Node{e.ident, e.attrs} {
			if src == nil || src.Tag == "!!null" {
				continue
			}
			if src.Kind != yaml.MappingNode {
				return fail(e, src.Line, "identifiers and attrs must be mappings")
			}
			for j := 0; j+1 < len(src.Content); j += 2 {
				k, vn := src.Content[j], src.Content[j+1]
				v, err := r.value(vn)
				if err != nil {
					return err
				}
				e.fields[k.Value] = v
				e.lines[k.Value] = k.Line
			}
		}
		for _, key := range []string{"slug", "name", "field_key", "username"} {
			if s, ok := e.fields[key].(string); ok && s != "" {
				e.name = s
				break
			}
		}
	}
	return nil
}

// target is an entry of this file a value refers to (by !KeyOf, !Find or
// primary key); otherwise ext is the name it gives for an object elsewhere
// ("" if it names none), and model that object's model if known.
func (c *converter) target(v any) (e *entry, ext, model string) {
	switch x := v.(type) {
	case ref:
		return x.e, "", x.e.model
	case outside:
		for _, k := range []string{"slug", "name", "field_key", "username"} {
			if s, ok := x.conds[k]; ok && s != nil {
				return nil, pyStr(s), x.model
			}
		}
		return nil, "", x.model
	case string:
		if e := c.byPK[strings.ToLower(x)]; e != nil {
			return e, "", e.model
		}
		return nil, x, ""
	}
	return nil, "", ""
}

// display is how a value reads in !Format: a reference by its name.
func (c *converter) display(v any) any {
	if e, ext, _ := c.target(v); e != nil {
		return e.name
	} else if _, isOutside := v.(outside); isOutside {
		return ext
	}
	return v
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
