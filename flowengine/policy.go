package flowengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PolicyEvaluator decides one named policy against an input document. The policies
// package (OPA) satisfies it; the signature uses plain types so it need not import us.
type PolicyEvaluator interface {
	Evaluate(ctx context.Context, policy string, input map[string]any) (allow bool, messages []string, err error)
}

// PolicyCompiler compiles every policy (name → Rego source) once, when the
// configuration loads. Its errors name the policy and the Rego line.
type PolicyCompiler func(modules map[string]string) (PolicyEvaluator, error)

// PolicyRecord is one evaluation, kept so a flow can explain why a stage ran or not.
type PolicyRecord struct {
	// Scope is what was decided: "flow <slug>" or "stage <name>".
	Scope    string        `json:"scope"`
	Binding  string        `json:"binding"`
	Outcome  bool          `json:"outcome"`
	Messages []string      `json:"messages,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
	// Failed: the evaluation errored and the binding chose no failure_result.
	Failed bool `json:"failed,omitempty"`
}

// Decision is the combined result of a set of bindings.
type Decision struct {
	Passed bool
	// Failed: a binding errored without an explicit failure_result. Passed is
	// then false and the caller stops with a generic denial (UnavailableMessage).
	Failed   bool
	Messages []string
	Records  []PolicyRecord
}

// UnavailableMessage is the generic denial when a policy fails.
const UnavailableMessage = "Sign-in is unavailable right now."

// evaluateBindings evaluates every enabled binding in order and combines the
// outcomes with mode. No enabled binding passes.
func evaluateBindings(ctx context.Context, ev PolicyEvaluator, scope string, bindings []PolicyBinding, mode EngineMode, user *User, input map[string]any) Decision {
	d := Decision{Passed: true}
	evaluated := 0
	anyPassed, allPassed := false, true
	for _, b := range bindings {
		if !b.Enabled {
			continue
		}
		evaluated++
		rec := evaluateBinding(ctx, ev, b, user, input)
		rec.Scope = scope
		d.Records = append(d.Records, rec)
		if rec.Failed {
			// One broken binding decides the whole set: under "any" another
			// binding's pass must not hide it, and negate cannot flip it.
			d.Passed, d.Failed, d.Messages = false, true, nil
			return d
		}
		d.Messages = append(d.Messages, rec.Messages...)
		if rec.Outcome {
			anyPassed = true
		} else {
			allPassed = false
		}
	}
	if evaluated == 0 {
		return d
	}
	if mode == ModeAll {
		d.Passed = allPassed
	} else {
		d.Passed = anyPassed
	}
	return d
}

func evaluateBinding(ctx context.Context, ev PolicyEvaluator, b PolicyBinding, user *User, input map[string]any) PolicyRecord {
	start := time.Now()
	rec := PolicyRecord{Binding: b.Target()}
	var result bool
	switch {
	case b.Group != "":
		result = user != nil && user.InGroup(b.Group)
	case b.User != "":
		result = user != nil && strings.EqualFold(user.Username, b.User)
	default:
		timeout := b.Timeout
		if timeout <= 0 {
			timeout = DefaultPolicyTimeout
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		allow, msgs, err := ev.Evaluate(pctx, b.Policy, input)
		if err == nil && pctx.Err() != nil {
			err = pctx.Err()
		}
		cancel()
		rec.Messages = msgs
		if err != nil {
			// Fail closed: an explicit failure_result decides, never negated, so a
			// broken policy cannot flip into an allow through negate; without one
			// the execution stops, since false would skip a deny stage.
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("timed out after %s: %w", timeout, err)
			}
			rec.Error = err.Error()
			rec.Messages = nil
			rec.Outcome = b.FailureResultSet && b.FailureResult
			rec.Failed = !b.FailureResultSet
			rec.Duration = time.Since(start)
			return rec
		}
		result = allow
	}
	rec.Outcome = result != b.Negate
	rec.Duration = time.Since(start)
	return rec
}

// PolicyInput builds the documented Rego input document.
func PolicyInput(req *Request, flow *Flow, stage *StageDef, user *User, authenticated bool, planCtx map[string]any) map[string]any {
	in := map[string]any{
		"user":    userInput(user, authenticated, planCtx),
		"request": requestInput(req),
	}
	if flow != nil {
		in["flow"] = map[string]any{"slug": flow.Slug, "designation": string(flow.Designation)}
	}
	if stage != nil {
		in["stage"] = map[string]any{"name": stage.Name, "type": stage.Type}
	}
	sess := map[string]any{}
	if req != nil && req.Session != nil {
		sess["flow"] = req.Session.Flow
		methods := make([]any, len(req.Session.AuthMethods))
		for i, m := range req.Session.AuthMethods {
			methods[i] = m
		}
		sess["auth_methods"] = methods
	}
	in["session"] = sess
	// input.reputation is added by the engine only for the policies that read
	// it (loaded.addReputation): it costs store reads.
	if planCtx != nil {
		c := make(map[string]any, len(planCtx))
		for k, v := range planCtx {
			c[k] = v
		}
		in["context"] = c
	} else {
		in["context"] = map[string]any{}
	}
	return in
}

// reputationTimeout bounds reading the reputation counters: PolicyInput has
// no context of its own, and a policy input must not wait on a slow store
// longer than a policy would.
const reputationTimeout = 2 * time.Second

// addReputation puts input.reputation into in when one of the bindings'
// policies reads it.
func (l *loaded) addReputation(bindings []PolicyBinding, req *Request, user *User, planCtx map[string]any, in map[string]any) {
	if len(l.reputation) == 0 {
		return
	}
	for _, b := range bindings {
		if b.Enabled && l.reputation[b.Policy] {
			if rep, ok := reputationInput(req, user, planCtx); ok {
				in["reputation"] = rep
			}
			return
		}
	}
}

// reputationInput is input.reputation for the policy's user (the pending
// user, else the identifier typed so far) and the client IP. Without a
// source both scores are 0; when the counters cannot be read the document is
// left out, so a policy reading it finds it undefined rather than clean.
func reputationInput(req *Request, user *User, planCtx map[string]any) (map[string]any, bool) {
	if req == nil || req.Reputation == nil {
		return map[string]any{"ip": 0, "username": 0}, true
	}
	key := ""
	if user != nil {
		key = RegulationKey(user, "")
	} else if id, _ := planCtx[CtxPendingUserIdentifier].(string); id != "" {
		key = RegulationKey(nil, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reputationTimeout)
	defer cancel()
	rep, err := req.Reputation.Reputation(ctx, key, req.ClientIP)
	if err != nil {
		return nil, false
	}
	return map[string]any{"ip": rep.IP, "username": rep.Username}, true
}

func userInput(u *User, authenticated bool, planCtx map[string]any) map[string]any {
	if u == nil {
		return map[string]any{"authenticated": false, "groups": []any{}, "attributes": map[string]any{}, "auth_methods": []any{}}
	}
	groups := make([]any, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = g
	}
	attrs := u.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	methods := []any{}
	for _, m := range StringList(planCtx[CtxAuthMethods]) {
		methods = append(methods, m)
	}
	return map[string]any{
		"username":      u.Username,
		"email":         u.Email,
		"name":          u.Name,
		"groups":        groups,
		"attributes":    attrs,
		"is_active":     u.IsActive,
		"authenticated": authenticated,
		"auth_methods":  methods,
	}
}

func requestInput(r *Request) map[string]any {
	if r == nil {
		return map[string]any{}
	}
	query := make(map[string]any, len(r.Query))
	for k, vs := range r.Query {
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		query[k] = l
	}
	headers := make(map[string]any, len(r.Header))
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" || k == "authorization" {
			continue // credentials stay out of policy input
		}
		headers[k] = strings.Join(vs, ", ")
	}
	return map[string]any{
		"method":    r.Method,
		"scheme":    r.Scheme,
		"host":      r.Host,
		"path":      r.Path,
		"query":     query,
		"headers":   headers,
		"client_ip": r.ClientIP,
	}
}

// CheckPolicies evaluates the named policies for the running stage, with the
// answers under validation as input.prompt; passed is true only if every one
// allows. messages are the refusing policies' messages. A policy that errors
// or times out fails closed: err wraps ErrPolicyFailed and the stage must not
// go on (deny with UnavailableMessage).
func (sc *StageContext) CheckPolicies(ctx context.Context, names []string, prompt map[string]any) (passed bool, messages []string, err error) {
	if len(names) == 0 {
		return true, nil, nil
	}
	if sc.loaded == nil || sc.loaded.policies == nil {
		return false, nil, fmt.Errorf("no policies loaded: %w", ErrPolicyFailed)
	}
	user, err := sc.PendingUser(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, nil, err
	}
	if user == nil && sc.Request != nil {
		user = sc.Request.User
	}
	authenticated := sc.Request != nil && sc.Request.User != nil && user != nil && user.ID == sc.Request.User.ID
	in := PolicyInput(sc.Request, sc.Flow, &StageDef{Name: sc.StageName, Type: sc.StageType}, user, authenticated, sc.Context)
	if prompt == nil {
		prompt = map[string]any{}
	}
	in["prompt"] = prompt
	passed = true
	for _, name := range names {
		b := PolicyBinding{Policy: name, Enabled: true, Timeout: DefaultPolicyTimeout}
		rec := evaluateBinding(ctx, sc.loaded.policies, b, user, in)
		rec.Scope = "stage " + sc.StageName
		if sc.exec != nil {
			sc.exec.records = append(sc.exec.records, rec)
		}
		result := "fail"
		switch {
		case rec.Error != "":
			result = "error"
		case rec.Outcome:
			result = "pass"
		}
		if sc.observer != nil && sc.Flow != nil {
			sc.observer.Observe(Event{Kind: EventPolicy, Flow: sc.Flow.Slug, Policy: rec.Binding, Result: result, Duration: rec.Duration})
		}
		if rec.Failed {
			return false, nil, fmt.Errorf("policy %s: %s: %w", name, rec.Error, ErrPolicyFailed)
		}
		if !rec.Outcome {
			passed = false
			messages = append(messages, rec.Messages...)
		}
	}
	return passed, messages, nil
}
