package blueprint

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// checkLimits counts the entries of a blueprint on its YAML tree, before
// anything is decoded or compiled: within MaxSize, a file of one-line policies
// would otherwise hold 100 000 Rego modules and cost minutes of CPU and
// gigabytes of memory in validate or POST /flowgate/import.
func checkLimits(file string, doc *yaml.Node) *Error {
	for _, sec := range []struct {
		key, what string
		max       int
	}{
		{"policies", "policies", MaxPolicies},
		{"stages", "stages", MaxStages},
		{"flows", "flows", MaxFlows},
		{"users", "users", MaxUsers},
	} {
		key, list := sectionOf(doc, sec.key)
		if list == nil {
			continue
		}
		if n := len(list.Content); n > sec.max {
			return &Error{File: file, Line: key.Line,
				Msg: fmt.Sprintf("%d %s, over the limit of %d in one file", n, sec.what, sec.max)}
		}
	}
	if _, list := sectionOf(doc, "policies"); list != nil {
		for _, entry := range list.Content {
			key, rego := sectionOf(entry, "rego")
			if rego == nil || len(rego.Value) <= MaxRegoSize {
				continue
			}
			return &Error{File: file, Line: key.Line, Entry: "policy " + nameOf(entry, "name"),
				Msg: fmt.Sprintf("rego is %d bytes, over the %d byte limit", len(rego.Value), MaxRegoSize)}
		}
	}
	if _, list := sectionOf(doc, "flows"); list != nil {
		for _, flow := range list.Content {
			if err := checkBindings(file, flow); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBindings bounds a flow's policy and stage bindings and each stage
// binding's policy bindings.
func checkBindings(file string, flow *yaml.Node) *Error {
	entry := "flow " + nameOf(flow, "slug")
	tooMany := func(key *yaml.Node, path string, n int) *Error {
		return &Error{File: file, Line: key.Line, Entry: entry,
			Msg: fmt.Sprintf("%s: %d bindings, over the limit of %d", path, n, MaxBindings)}
	}
	if key, list := sectionOf(flow, "policies"); list != nil && len(list.Content) > MaxBindings {
		return tooMany(key, "policies", len(list.Content))
	}
	key, stages := sectionOf(flow, "stages")
	if stages == nil {
		return nil
	}
	if len(stages.Content) > MaxBindings {
		return tooMany(key, "stages", len(stages.Content))
	}
	for i, sb := range stages.Content {
		if key, list := sectionOf(sb, "policies"); list != nil && len(list.Content) > MaxBindings {
			return tooMany(key, fmt.Sprintf("stages[%d].policies", i), len(list.Content))
		}
	}
	return nil
}

// sectionOf finds key in mapping n: the key node (for its line) and the value
// if it is a list, or, for rego, a scalar.
func sectionOf(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == key {
			if v.Kind == yaml.SequenceNode || v.Kind == yaml.ScalarNode {
				return k, v
			}
			return nil, nil
		}
	}
	return nil, nil
}

// nameOf is an entry's name or slug, for error messages.
func nameOf(entry *yaml.Node, key string) string {
	if v := mapValue(entry, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return "?"
}
