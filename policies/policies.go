package policies

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ErrUnknownPolicy is returned when evaluating a name that was not compiled.
var ErrUnknownPolicy = errors.New("unknown policy")

// Set is a compiled group of policies, one Rego module each. Every policy
// behaves as if compiled on its own, so two policies may declare the same
// package (see Compile).
type Set struct {
	prepared map[string]*policy
}

// policy is one prepared query for the whole package document: one evaluation
// yields both allow and messages.
type policy struct {
	query rego.PreparedEvalQuery
}

// CompileError locates a Rego error: the policy and the line within its module.
type CompileError struct {
	Policy string
	Line   int // 1-based line within the Rego source; 0 if unknown
	Msg    string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy %s: rego line %d: %s", e.Policy, e.Line, e.Msg)
	}
	return fmt.Sprintf("policy %s: %s", e.Policy, e.Msg)
}

// Evaluate decides one policy: allow is data.<package>.allow (undefined ⇒ false),
// messages is data.<package>.messages (a set or array of strings). Built-in
// errors are errors (strict mode), so a broken policy never reads as "undefined".
// It honours
// ctx's deadline.
func (s *Set) Evaluate(ctx context.Context, name string, input map[string]any) (bool, []string, error) {
	p, ok := s.prepared[name]
	if !ok {
		return false, nil, fmt.Errorf("policy %s: %w", name, ErrUnknownPolicy)
	}
	val, err := ast.InterfaceToValue(input)
	if err != nil {
		return false, nil, fmt.Errorf("policy %s: input: %w", name, err)
	}
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(val))
	if err != nil {
		return false, nil, fmt.Errorf("policy %s: %w", name, err)
	}
	var doc map[string]any
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		doc, _ = rs[0].Expressions[0].Value.(map[string]any)
	}
	allow := false
	if v, ok := doc["allow"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return false, nil, fmt.Errorf("policy %s: allow is %T, not a boolean", name, v)
		}
		allow = b
	}
	var msgs []string
	list, _ := doc["messages"].([]any)
	for _, m := range list {
		if str, ok := m.(string); ok {
			msgs = append(msgs, str)
		}
	}
	sort.Strings(msgs)
	return allow, msgs, nil
}

// PolicyName, RegoLine and Message let other packages locate the error without
// importing this one.
func (e *CompileError) PolicyName() string { return e.Policy }

// RegoLine is the 1-based line within the Rego source (0 if unknown).
func (e *CompileError) RegoLine() int { return e.Line }

// Message is the error without its location.
func (e *CompileError) Message() string { return e.Msg }
