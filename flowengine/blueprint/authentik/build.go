package authentik

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// built is the converted document with the authentik line of every entry.
type built struct {
	doc nDocument
	// lines, in the order of doc's lists.
	policyLines, stageLines, flowLines []int
	flowPolicyLines                    [][]int
	bindingLines                       [][]int
	bindingPolicyLines                 [][][]int
}

// flowOut is a flow being assembled; bindings are keyed so that a repeated or
// absent binding entry replaces or removes an earlier one.
type flowOut struct {
	e        *entry
	absent   bool
	bindings map[string]*bindingOut
	policies map[string]*policyBindingOut
}

type bindingOut struct {
	e        *entry
	sub      int // 0, or which stage an identification stage asks on its page (see inlineStages)
	b        nStageBinding
	policies map[string]*policyBindingOut
}

type policyBindingOut struct {
	e *entry
	b nBinding
}

// flowSettings are the flow attributes flowgate has.
var flowSettings = map[string]bool{
	"slug": true, "name": true, "title": true, "designation": true, "denied_action": true,
	"policy_engine_mode": true, "authentication": true,
}

var bindingSettings = map[string]bool{
	"target": true, "stage": true, "order": true, "evaluate_on_plan": true,
	"re_evaluate_policies": true, "policy_engine_mode": true, "invalid_response_action": true,
}

var policyBindingSettings = map[string]bool{
	"target": true, "policy": true, "group": true, "user": true, "order": true,
	"enabled": true, "negate": true, "timeout": true, "failure_result": true,
}

// build assembles the flowgate document. Entries repeating a flow, stage or
// policy merge into the first (later settings and state win), as authentik
// updates one object.
func (c *converter) build() (*built, error) {
	var flowOrder, stageOrder, policyOrder []string
	flows := map[string]*flowOut{}
	stages := map[string]*entry{}
	policies := map[string]*entry{}
	merge := func(into, from *entry) {
		for k, v := range from.fields {
			into.fields[k] = v
			into.lines[k] = from.lines[k]
		}
		into.state = from.state
	}
	for _, e := range c.entries {
		if e.skip {
			continue
		}
		switch e.kind {
		case kindFlow:
			if e.name == "" {
				return nil, fail(e, e.line, "a flow needs a slug")
			}
			if f := flows[e.name]; f != nil {
				merge(f.e, e)
				continue
			}
			flows[e.name] = &flowOut{e: e, bindings: map[string]*bindingOut{}, policies: map[string]*policyBindingOut{}}
			flowOrder = append(flowOrder, e.name)
		case kindStage:
			if e.name == "" {
				return nil, fail(e, e.line, "a stage needs a name")
			}
			if s := stages[e.name]; s != nil {
				merge(s, e)
				continue
			}
			stages[e.name] = e
			stageOrder = append(stageOrder, e.name)
		case kindPolicy:
			if e.name == "" {
				return nil, fail(e, e.line, "a policy needs a name")
			}
			if p := policies[e.name]; p != nil {
				if p.model != e.model {
					// The recovery examples replace an expression policy by
					// another type under the same name.
					p.model, p.stype = e.model, e.stype
					p.fields, p.lines = map[string]any{}, map[string]int{}
				}
				merge(p, e)
				continue
			}
			policies[e.name] = e
			policyOrder = append(policyOrder, e.name)
		case kindMeta:
			c.warn(e, e.line, WarnLeftOut, "applies another authentik blueprint; import that file as well")
		case kindGroup:
			c.warn(e, e.line, WarnLeftOut, "groups exist in flowgate only as names on users; references to this one use its name")
		case kindUser:
			c.warn(e, e.line, WarnLeftOut, "users are not imported from authentik blueprints; add them with caddy flowgate user add or as seed users")
		case kindOther:
			c.warn(e, e.line, WarnLeftOut, "flowgate has no counterpart for "+e.model+" (sources, providers, applications, brands, outposts and the like are not imported)")
		}
	}
	// Stage bindings.
	bindingOf := map[*entry]*bindingOut{}
	for _, e := range c.entries {
		if e.skip || e.kind != kindStageBinding {
			continue
		}
		f, err := c.bindingFlow(e, flows)
		if err != nil {
			return nil, err
		}
		stage, err := c.nameOf(e, "stage", e.fields["stage"], kindStage)
		if err != nil {
			return nil, err
		}
		order := intField(e, "order", 0)
		key := fmt.Sprintf("%s\x00%d", stage, order)
		if e.state == "absent" {
			delete(f.bindings, key)
			continue
		}
		if st := stages[stage]; st != nil && st.state == "absent" {
			return nil, fail(e, e.line, "binds stage %q, which this file removes (state: absent)", stage)
		}
		b := &bindingOut{e: e, b: nStageBinding{Stage: stage, Order: order}, policies: map[string]*policyBindingOut{}}
		if prev := f.bindings[key]; prev != nil {
			b.policies = prev.policies
		}
		if v, ok := e.fields["evaluate_on_plan"].(bool); ok && v {
			b.b.EvaluateOnPlan = &v
		}
		if v, ok := e.fields["re_evaluate_policies"].(bool); ok && !v {
			b.b.ReEvaluatePolicies = &v
		}
		if s, _ := e.fields["policy_engine_mode"].(string); s != "" && s != "any" {
			b.b.PolicyEngineMode = s
		}
		if s, _ := e.fields["invalid_response_action"].(string); s != "" && s != "retry" {
			b.b.InvalidResponseAction = s
		}
		c.leftOutOf(e, bindingSettings)
		f.bindings[key] = b
		bindingOf[e] = b
	}
	for _, slug := range flowOrder {
		if err := c.inlineStages(flows[slug], stages); err != nil {
			return nil, err
		}
	}
	// Policy bindings.
	for _, e := range c.entries {
		if e.skip || e.kind != kindPolicyBinding {
			continue
		}
		into, err := c.policyBindingTarget(e, flows, bindingOf)
		if err != nil {
			return nil, err
		}
		if into == nil {
			continue // warned: a target flowgate does not import
		}
		pb, key, err := c.policyBinding(e, policies)
		if err != nil {
			return nil, err
		}
		if e.state == "absent" {
			delete(into, key)
			continue
		}
		into[key] = &policyBindingOut{e: e, b: pb}
	}
	out := &built{doc: nDocument{Version: 1}}
	for _, name := range policyOrder {
		p := policies[name]
		if p.state == "absent" {
			out.doc.Policies = append(out.doc.Policies, nPolicy{Name: name, State: "absent"})
		} else {
			out.doc.Policies = append(out.doc.Policies, nPolicy{Name: name, Rego: c.policyRego(p)})
		}
		out.policyLines = append(out.policyLines, p.line)
	}
	for _, name := range stageOrder {
		s := stages[name]
		switch {
		case s.state == "absent":
			out.doc.Stages = append(out.doc.Stages, nStage{Name: name, State: "absent"})
		case s.stype == "":
			if bound(s, flows) {
				return nil, fail(s, s.line, "flowgate has no stage like %s, and a flow of this file binds it", s.model)
			}
			c.warn(s, s.line, WarnLeftOut, "flowgate has no stage like "+s.model+"; no flow of this file binds it")
			continue
		default:
			cfg, err := c.stageConfig(s)
			if err != nil {
				return nil, err
			}
			out.doc.Stages = append(out.doc.Stages, nStage{Name: name, Type: s.stype, Config: cfg})
		}
		out.stageLines = append(out.stageLines, s.line)
	}
	for _, e := range c.entries {
		switch {
		case e.skip || e.used || e.state == "absent":
		case e.kind == kindSecret:
			c.warn(e, e.line, WarnLeftOut, "no stage of this file uses this secret")
		case e.kind == kindPrompt:
			c.warn(e, e.line, WarnLeftOut, "no prompt stage of this file uses this prompt (flowgate declares prompt fields inside their stage)")
		}
	}
	for _, slug := range flowOrder {
		f := flows[slug]
		e := f.e
		if e.state == "absent" {
			out.doc.Flows = append(out.doc.Flows, nFlow{Slug: slug, State: "absent"})
			out.flowLines = append(out.flowLines, e.line)
			out.flowPolicyLines = append(out.flowPolicyLines, nil)
			out.bindingLines = append(out.bindingLines, nil)
			out.bindingPolicyLines = append(out.bindingPolicyLines, nil)
			continue
		}
		nf := nFlow{Slug: slug}
		nf.Name, _ = e.fields["name"].(string)
		nf.Title, _ = e.fields["title"].(string)
		nf.Designation, _ = e.fields["designation"].(string)
		nf.DeniedAction, _ = e.fields["denied_action"].(string)
		nf.PolicyEngineMode, _ = e.fields["policy_engine_mode"].(string)
		nf.Authentication, _ = e.fields["authentication"].(string)
		c.leftOutOf(e, flowSettings)
		var pls []int
		nf.Policies, pls = sortedPolicyBindings(f.policies)
		var bls []int
		var bpls [][]int
		for _, b := range sortedBindings(f.bindings) {
			var lines []int
			b.b.Policies, lines = sortedPolicyBindings(b.policies)
			nf.Stages = append(nf.Stages, b.b)
			bls = append(bls, b.e.line)
			bpls = append(bpls, lines)
		}
		out.doc.Flows = append(out.doc.Flows, nf)
		out.flowLines = append(out.flowLines, e.line)
		out.flowPolicyLines = append(out.flowPolicyLines, pls)
		out.bindingLines = append(out.bindingLines, bls)
		out.bindingPolicyLines = append(out.bindingPolicyLines, bpls)
	}
	return out, nil
}

// inlineStages binds, right after an identification stage, the password and
// captcha stages it asks for on its own page (password_stage, captcha_stage):
// flowgate asks for them on the next pages. Leaving them out would let such a
// flow sign users in without a password.
func (c *converter) inlineStages(f *flowOut, stages map[string]*entry) error {
	for _, b := range sortedBindings(f.bindings) {
		st := stages[b.b.Stage]
		if st == nil || st.stype != "identification" || b.sub != 0 {
			continue
		}
		for i, key := range []string{"password_stage", "captcha_stage"} {
			v := st.fields[key]
			if v == nil {
				continue
			}
			name, err := c.nameOf(st, key, v, kindStage)
			if err != nil {
				return err
			}
			c.warn(st, st.lineOf(key), WarnSetting, fmt.Sprintf("%s: stage %q is asked on its own page right after this one", key, name))
			k := fmt.Sprintf("%s\x00%d", name, b.b.Order)
			if f.bindings[k] == nil {
				f.bindings[k] = &bindingOut{e: b.e, sub: i + 1, b: nStageBinding{Stage: name, Order: b.b.Order},
					policies: map[string]*policyBindingOut{}}
			}
		}
	}
	return nil
}

// bound reports whether a flow of this file binds the stage entry.
func bound(s *entry, flows map[string]*flowOut) bool {
	for _, f := range flows {
		for _, b := range f.bindings {
			if b.b.Stage == s.name {
				return true
			}
		}
	}
	return false
}

// leftOutOf warns about an entry's fields outside known.
func (c *converter) leftOutOf(e *entry, known map[string]bool) {
	var left []string
	for _, k := range sortedKeys(e.fields) {
		if !known[k] && !bookkeeping[k] {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		c.warn(e, e.lineOf(left[0]), WarnSetting, "settings left out, flowgate has no counterpart: "+strings.Join(left, ", "))
	}
}

// bindingFlow is the flow of this file a stage binding belongs to.
func (c *converter) bindingFlow(e *entry, flows map[string]*flowOut) (*flowOut, error) {
	t, ext, _ := c.target(e.fields["target"])
	if t != nil && t.kind == kindFlow {
		if f := flows[t.name]; f != nil {
			return f, nil
		}
	}
	name := ext
	if t != nil {
		name = t.describe()
	}
	return nil, fail(e, e.lineOf("target"), "target %q is not a flow of this file (flowgate imports a flow with all its stage bindings)", name)
}

// policyBindingTarget is where a policy binding goes: a flow's or a stage
// binding's bindings. nil (with a warning) for an object flowgate does not
// import, such as an application.
func (c *converter) policyBindingTarget(e *entry, flows map[string]*flowOut, bindingOf map[*entry]*bindingOut) (map[string]*policyBindingOut, error) {
	t, ext, model := c.target(e.fields["target"])
	if t != nil {
		switch t.kind {
		case kindFlow:
			if f := flows[t.name]; f != nil && !t.skip {
				return f.policies, nil
			}
			return nil, nil
		case kindStageBinding:
			if b := bindingOf[t]; b != nil {
				return b.policies, nil
			}
			if t.skip || t.state == "absent" {
				return nil, nil
			}
		case kindOther, kindGroup, kindUser, kindMeta:
			c.warn(e, e.lineOf("target"), WarnLeftOut, "binds to "+t.describe()+", which is not imported")
			return nil, nil
		}
		return nil, fail(e, e.lineOf("target"), "target %s cannot hold policy bindings in flowgate", t.describe())
	}
	if model != "" {
		if k, _ := classify(model); k == kindOther {
			c.warn(e, e.lineOf("target"), WarnLeftOut, fmt.Sprintf("binds to %s %q, which is not imported", model, ext))
			return nil, nil
		}
	}
	return nil, fail(e, e.lineOf("target"), "target %q is not a flow or stage binding of this file", ext)
}

// policyBinding converts a policy binding; key identifies it within its
// target (what it binds and its order).
func (c *converter) policyBinding(e *entry, policies map[string]*entry) (nBinding, string, error) {
	var b nBinding
	var err error
	n := 0
	for _, k := range []string{"policy", "group", "user"} {
		v, ok := e.fields[k]
		if !ok || v == nil {
			continue
		}
		n++
		switch k {
		case "policy":
			b.Policy, err = c.nameOf(e, k, v, kindPolicy)
		case "group":
			b.Group, err = c.nameOf(e, k, v, kindGroup)
		case "user":
			b.User, err = c.nameOf(e, k, v, kindUser)
		}
		if err != nil {
			return b, "", err
		}
	}
	if n != 1 {
		return b, "", fail(e, e.line, "a policy binding binds exactly one of policy, group, user")
	}
	if p := policies[b.Policy]; p != nil && p.state == "absent" && e.state != "absent" {
		return b, "", fail(e, e.lineOf("policy"), "binds policy %q, which this file removes (state: absent)", b.Policy)
	}
	b.Order = intField(e, "order", 0)
	if v, ok := e.fields["enabled"].(bool); ok && !v {
		b.Enabled = &v
	}
	if v, ok := e.fields["negate"].(bool); ok && v {
		b.Negate = &v
	}
	if v, ok := e.fields["failure_result"].(bool); ok {
		b.FailureResult = &v
	}
	switch t := e.fields["timeout"].(type) {
	case int:
		if t > 0 && t != 30 {
			b.Timeout = fmt.Sprintf("%ds", t)
		}
	case float64:
		if t > 0 && t != 30 {
			b.Timeout = fmt.Sprintf("%gs", t)
		}
	}
	c.leftOutOf(e, policyBindingSettings)
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%d", b.Policy, b.Group, b.User, b.Order)
	return b, key, nil
}

func sortedBindings(m map[string]*bindingOut) []*bindingOut {
	out := make([]*bindingOut, 0, len(m))
	for _, b := range m {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].b.Order != out[j].b.Order {
			return out[i].b.Order < out[j].b.Order
		}
		if out[i].e.index != out[j].e.index {
			return out[i].e.index < out[j].e.index
		}
		return out[i].sub < out[j].sub
	})
	return out
}

func sortedPolicyBindings(m map[string]*policyBindingOut) ([]nBinding, []int) {
	list := make([]*policyBindingOut, 0, len(m))
	for _, b := range m {
		list = append(list, b)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].b.Order != list[j].b.Order {
			return list[i].b.Order < list[j].b.Order
		}
		return list[i].e.index < list[j].e.index
	})
	var out []nBinding
	var lines []int
	for _, b := range list {
		out = append(out, b.b)
		lines = append(lines, b.e.line)
	}
	return out, lines
}

// node encodes the document and gives each part the line of the authentik
// entry it comes from.
func (b *built) node() (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(&b.doc); err != nil {
		return nil, fmt.Errorf("encoding the converted blueprint: %w", err)
	}
	root := &n
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	setLine(root, 1)
	each := func(key string, f func(i int, item *yaml.Node)) {
		if list := mapValue(root, key); list != nil {
			for i, item := range list.Content {
				f(i, item)
			}
		}
	}
	each("policies", func(i int, item *yaml.Node) {
		setLine(item, b.policyLines[i])
		if r := mapValue(item, "rego"); r != nil {
			r.Style = yaml.LiteralStyle
		}
	})
	each("stages", func(i int, item *yaml.Node) { setLine(item, b.stageLines[i]) })
	each("flows", func(i int, item *yaml.Node) {
		setLine(item, b.flowLines[i])
		if list := mapValue(item, "policies"); list != nil {
			for j, pb := range list.Content {
				setLine(pb, b.flowPolicyLines[i][j])
			}
		}
		if list := mapValue(item, "stages"); list != nil {
			for j, sb := range list.Content {
				setLine(sb, b.bindingLines[i][j])
				if pl := mapValue(sb, "policies"); pl != nil {
					for k, pb := range pl.Content {
						setLine(pb, b.bindingPolicyLines[i][j][k])
					}
				}
			}
		}
	})
	return root, nil
}

func setLine(n *yaml.Node, line int) {
	n.Line, n.Column = line, 1
	for _, c := range n.Content {
		setLine(c, line)
	}
}
