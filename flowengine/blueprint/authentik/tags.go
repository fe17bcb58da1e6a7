package authentik

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ref is what !KeyOf and a resolved !Find give: an entry of this file.
type ref struct{ e *entry }

// outside is a !Find that matched nothing in this file: an object that exists
// only in the authentik instance. Its conditions still name it (slug, name).
type outside struct {
	model string
	conds map[string]any
}

// resolver turns YAML nodes into plain values, resolving authentik's tags
// where their inputs are known at import: the file's own entries and
// context, and the environment.
type resolver struct {
	c       *converter
	context map[string]any
	e       *entry // the entry being resolved, for messages
}

func (r *resolver) fail(n *yaml.Node, format string, args ...any) error {
	return &Error{Line: n.Line, Entry: r.entryName(), Msg: fmt.Sprintf(format, args...)}
}

func (r *resolver) entryName() string {
	if r.e == nil {
		return ""
	}
	return r.e.describe()
}

// value resolves n and everything below it.
func (r *resolver) value(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!KeyOf":
		return r.keyOf(n)
	case "!Find":
		return r.find(n)
	case "!Context":
		return r.lookup(n, "!Context", func(key string) (any, bool) {
			v, ok := r.context[key]
			return v, ok
		})
	case "!Env":
		v, err := r.lookup(n, "!Env", func(key string) (any, bool) {
			s := os.Getenv(key)
			return s, s != ""
		})
		if err == nil && r.e != nil {
			r.c.warn(r.e, n.Line, WarnEnv, "!Env was read when the file was imported; a converted file holds the value itself")
		}
		return v, err
	case "!Format":
		return r.format(n)
	case "!If":
		return r.ifTag(n)
	case "!Condition":
		return r.condition(n)
	case "!ParseJSON":
		if n.Kind != yaml.ScalarNode {
			return nil, r.fail(n, "!ParseJSON takes a string")
		}
		var v any
		if err := json.Unmarshal([]byte(n.Value), &v); err != nil {
			return nil, r.fail(n, "!ParseJSON: %v", err)
		}
		return v, nil
	case "!AtIndex":
		return r.atIndex(n)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, r.fail(n, "YAML tag %s is not supported on import (supported: !KeyOf, !Find, !Context, !Env, !Format, !If, !Condition, !ParseJSON, !AtIndex)", n.Tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := r.value(n.Content[i])
			if err != nil {
				return nil, err
			}
			v, err := r.value(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := r.value(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, r.fail(n, "%v", err)
		}
		return v, nil
	}
	return nil, r.fail(n, "unexpected YAML node")
}

func (r *resolver) keyOf(n *yaml.Node) (any, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, r.fail(n, "!KeyOf takes the id of another entry")
	}
	e := r.c.byID[n.Value]
	if e == nil {
		return nil, r.fail(n, "!KeyOf %s: no entry in this file has id %q", n.Value, n.Value)
	}
	return ref{e}, nil
}

// find looks for an entry of the model whose identifiers or attributes have
// every condition's value; conditions are [field, value] pairs.
func (r *resolver) find(n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) < 1 {
		return nil, r.fail(n, "!Find takes [model, [field, value], …]")
	}
	m, err := r.value(n.Content[0])
	if err != nil {
		return nil, err
	}
	model, ok := m.(string)
	if !ok {
		return nil, r.fail(n, "!Find: the model must be a string")
	}
	model = normalizeModel(model)
	conds := map[string]any{}
	for _, c := range n.Content[1:] {
		if c.Kind != yaml.SequenceNode || len(c.Content) != 2 {
			return nil, r.fail(c, "!Find: each condition is [field, value]")
		}
		k, err := r.value(c.Content[0])
		if err != nil {
			return nil, err
		}
		v, err := r.value(c.Content[1])
		if err != nil {
			return nil, err
		}
		conds[fmt.Sprint(k)] = v
	}
	for _, e := range r.c.entries {
		if e.model == model && e.matches(conds) {
			return ref{e}, nil
		}
	}
	return outside{model: model, conds: conds}, nil
}

// lookup implements !Context and !Env: a key, or [key, default].
func (r *resolver) lookup(n *yaml.Node, tag string, get func(string) (any, bool)) (any, error) {
	var keyNode, defNode *yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		keyNode = n
	case yaml.SequenceNode:
		if len(n.Content) < 1 || len(n.Content) > 2 {
			return nil, r.fail(n, "%s takes key or [key, default]", tag)
		}
		keyNode = n.Content[0]
		if len(n.Content) == 2 {
			defNode = n.Content[1]
		}
	default:
		return nil, r.fail(n, "%s takes key or [key, default]", tag)
	}
	var k any = n.Value // the tagged scalar itself is the key
	if keyNode != n {
		var err error
		if k, err = r.value(keyNode); err != nil {
			return nil, err
		}
	}
	if v, ok := get(fmt.Sprint(k)); ok {
		return v, nil
	}
	if defNode == nil {
		return nil, nil
	}
	return r.value(defNode)
}

// format implements !Format [format, args…] with Python's %-formatting for
// %s, %d, %i, %f, %r and %%.
func (r *resolver) format(n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) < 1 {
		return nil, r.fail(n, "!Format takes [format, args…]")
	}
	f, err := r.value(n.Content[0])
	if err != nil {
		return nil, err
	}
	format, ok := f.(string)
	if !ok {
		return nil, r.fail(n, "!Format: the format must be a string")
	}
	var args []any
	for _, c := range n.Content[1:] {
		v, err := r.value(c)
		if err != nil {
			return nil, err
		}
		args = append(args, r.c.display(v))
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		if i+1 >= len(format) {
			return nil, r.fail(n, "!Format: %q ends in %%", format)
		}
		i++
		verb := format[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if next >= len(args) {
			return nil, r.fail(n, "!Format: not enough arguments for %q", format)
		}
		a := args[next]
		next++
		switch verb {
		case 's', 'r':
			b.WriteString(pyStr(a))
		case 'd', 'i':
			num, ok := toFloat(a)
			if !ok {
				return nil, r.fail(n, "!Format: %%%c needs a number", verb)
			}
			b.WriteString(strconv.FormatInt(int64(num), 10))
		case 'f':
			num, ok := toFloat(a)
			if !ok {
				return nil, r.fail(n, "!Format: %%f needs a number")
			}
			b.WriteString(strconv.FormatFloat(num, 'f', 6, 64))
		default:
			return nil, r.fail(n, "!Format: %%%c is not supported", verb)
		}
	}
	if next != len(args) {
		return nil, r.fail(n, "!Format: not all arguments converted in %q", format)
	}
	return b.String(), nil
}

func (r *resolver) ifTag(n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode || (len(n.Content) != 1 && len(n.Content) != 3) {
		return nil, r.fail(n, "!If takes [condition] or [condition, when_true, when_false]")
	}
	cond, err := r.value(n.Content[0])
	if err != nil {
		return nil, err
	}
	if len(n.Content) == 1 {
		return truthy(cond), nil
	}
	if truthy(cond) {
		return r.value(n.Content[1])
	}
	return r.value(n.Content[2])
}

func (r *resolver) condition(n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) < 2 {
		return nil, r.fail(n, "!Condition takes [mode, value, …] with at least one value")
	}
	m, err := r.value(n.Content[0])
	if err != nil {
		return nil, err
	}
	mode, _ := m.(string)
	var vals []bool
	for _, c := range n.Content[1:] {
		v, err := r.value(c)
		if err != nil {
			return nil, err
		}
		vals = append(vals, truthy(v))
	}
	all, any, xor := true, false, false
	for _, v := range vals {
		all = all && v
		any = any || v
		xor = xor != v
	}
	switch strings.ToUpper(mode) {
	case "AND":
		return all, nil
	case "NAND":
		return !all, nil
	case "OR":
		return any, nil
	case "NOR":
		return !any, nil
	case "XOR":
		return xor, nil
	case "XNOR":
		return !xor, nil
	}
	return nil, r.fail(n, "!Condition: unknown mode %q (want AND, NAND, OR, NOR, XOR, XNOR)", mode)
}

func (r *resolver) atIndex(n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode || (len(n.Content) != 2 && len(n.Content) != 3) {
		return nil, r.fail(n, "!AtIndex takes [object, index] or [object, index, default]")
	}
	obj, err := r.value(n.Content[0])
	if err != nil {
		return nil, err
	}
	idx, err := r.value(n.Content[1])
	if err != nil {
		return nil, err
	}
	missing := func() (any, error) {
		if len(n.Content) == 3 {
			return r.value(n.Content[2])
		}
		return nil, r.fail(n, "!AtIndex: %v not found", idx)
	}
	switch o := obj.(type) {
	case []any:
		i, ok := idx.(int)
		if !ok {
			return nil, r.fail(n, "!AtIndex: a list index must be an integer")
		}
		if i < 0 {
			i += len(o)
		}
		if i < 0 || i >= len(o) {
			return missing()
		}
		return o[i], nil
	case map[string]any:
		if v, ok := o[fmt.Sprint(idx)]; ok {
			return v, nil
		}
		return missing()
	}
	return nil, r.fail(n, "!AtIndex: the object must be a list or a mapping")
}

// truthy is Python's bool().
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int:
		return x != 0
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// pyStr is Python's str() for the values a blueprint holds.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	}
	return fmt.Sprint(v)
}
