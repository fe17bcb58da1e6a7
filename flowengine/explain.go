package flowengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidQuery: an ExplainQuery names neither or both of a flow and a
// designation, an unknown designation, or a signed-in user without a user.
var ErrInvalidQuery = errors.New("invalid explain query")

// ExplainQuery asks what the engine would do with one request; see Engine.Explain.
type ExplainQuery struct {
	// Flow is the slug of the flow to explain; or Designation names a
	// designation and the flow is chosen as the gateway would. Exactly one is set.
	Flow        string `json:"flow,omitempty"`
	Designation string `json:"designation,omitempty"`
	// User is who the explanation is for (nil: an anonymous visitor). Unless
	// SignedIn, they have no session when the flow starts, so flow selection
	// and planning see an anonymous visitor, and policies checked just before
	// a stage are evaluated as if the user had been identified by then.
	User *User `json:"-"`
	// SignedIn: User already has a session, so selection and planning see
	// them too (a flow started by a signed-in user acts on them throughout).
	SignedIn bool `json:"signed_in,omitempty"`
	// Request starts the flow (default GET /); a next in its query is validated
	// as Start does. Its User is replaced by the fields above and its Session
	// is kept only when SignedIn.
	Request *Request `json:"-"`
}

// Verdict is what becomes of a candidate flow or a stage binding; every value
// in one place.
type Verdict string

// Verdicts.
const (
	// VerdictChosen: the first candidate whose flow policies pass.
	VerdictChosen Verdict = "chosen"
	// VerdictDenied: the candidate's flow policies fail; the next one is tried.
	VerdictDenied Verdict = "denied"
	// VerdictFailed: a policy errored without a failure_result; the selection
	// or the execution stops with UnavailableMessage.
	VerdictFailed Verdict = "failed"
	// VerdictKept: an evaluate_on_plan binding whose policies pass at planning.
	VerdictKept Verdict = "kept"
	// VerdictDropped: an evaluate_on_plan binding whose policies fail at
	// planning; it is not in the plan.
	VerdictDropped Verdict = "dropped"
	// VerdictRuns: the stage runs (what it then decides depends on the answers).
	VerdictRuns Verdict = "runs"
	// VerdictSkipped: the binding's policies, checked just before the stage
	// (re_evaluate_policies), fail; the stage is skipped.
	VerdictSkipped Verdict = "skipped"
	// VerdictNotReached: an earlier candidate or stage decided.
	VerdictNotReached Verdict = "not_reached"
)

// ExplainResult is how an explained request ends up; every value in one place.
type ExplainResult string

// Explain results.
const (
	// ExplainProceeds: the plan runs; each stage then judges the user's answers.
	ExplainProceeds ExplainResult = "proceeds"
	// ExplainDenied: the flow turns the request away (authentication
	// requirement or flow policies, with denied_action message) or a deny stage runs.
	ExplainDenied ExplainResult = "denied"
	// ExplainRedirect: the flow does not apply and denied_action sends the
	// browser on.
	ExplainRedirect ExplainResult = "redirect"
	// ExplainUnavailable: a policy failed; the gateway answers
	// UnavailableMessage (503 at flow selection).
	ExplainUnavailable ExplainResult = "unavailable"
	// ExplainNoFlow: no flow of the designation applies (404).
	ExplainNoFlow ExplainResult = "no_flow"
)

// Explanation is what Engine.Explain found. Text renders it for people.
type Explanation struct {
	// Flow is the flow explained: the one asked for, or the one chosen.
	Flow        string `json:"flow,omitempty"`
	Designation string `json:"designation,omitempty"`
	// User is the username explained for; empty for an anonymous visitor.
	User     string           `json:"user,omitempty"`
	SignedIn bool             `json:"signed_in"`
	Request  ExplainedRequest `json:"request"`
	// Selection is present when a designation was asked for.
	Selection *FlowSelection `json:"selection,omitempty"`
	// RejectedNext is a next that the gateway would drop (the default target
	// is used instead).
	RejectedNext   string            `json:"rejected_next,omitempty"`
	Authentication *RequirementCheck `json:"authentication,omitempty"`
	FlowPolicies   *PolicyResult     `json:"flow_policies,omitempty"`
	// Stages lists every stage binding of the flow by order.
	Stages []StageExplanation `json:"stages,omitempty"`
	// Plan is the stage list planning builds (the context's flow_plan); Runs
	// the stages of it that run, in order.
	Plan    []string       `json:"plan"`
	Runs    []string       `json:"runs"`
	Outcome ExplainOutcome `json:"outcome"`
}

// ExplainedRequest is the part of the request that policies usually look at.
type ExplainedRequest struct {
	Method   string `json:"method"`
	Scheme   string `json:"scheme,omitempty"`
	Host     string `json:"host,omitempty"`
	Path     string `json:"path"`
	ClientIP string `json:"client_ip,omitempty"`
}

// FlowSelection is the choice among a designation's flows.
type FlowSelection struct {
	Designation Designation `json:"designation"`
	// Candidates are in selection order: order, then slug, built-in flows last.
	Candidates []FlowCandidate `json:"candidates"`
	Chosen     string          `json:"chosen,omitempty"`
}

// FlowCandidate is one flow of a designation and its flow policies' decision.
type FlowCandidate struct {
	Slug     string        `json:"slug"`
	Order    int           `json:"order"`
	BuiltIn  bool          `json:"built_in,omitempty"`
	Verdict  Verdict       `json:"verdict"`
	Policies *PolicyResult `json:"policies,omitempty"`
}

// RequirementCheck is the flow's authentication requirement against the request.
type RequirementCheck struct {
	Requirement AuthRequirement `json:"requirement"`
	Met         bool            `json:"met"`
	Message     string          `json:"message,omitempty"`
}

// PolicyResult is one set of policy bindings decided.
type PolicyResult struct {
	Mode   EngineMode `json:"mode"`
	Passed bool       `json:"passed"`
	// Failed: a binding errored without a failure_result; the execution stops
	// with UnavailableMessage.
	Failed   bool            `json:"failed,omitempty"`
	Messages []string        `json:"messages,omitempty"`
	Bindings []BindingResult `json:"bindings"`
}

// BindingResult is one enabled binding's record, with what the record leaves out.
type BindingResult struct {
	PolicyRecord
	Negate bool `json:"negate,omitempty"`
	// FailureResult is the binding's explicit failure_result, if it sets one.
	FailureResult *bool `json:"failure_result,omitempty"`
}

// StageExplanation is one stage binding of the flow.
type StageExplanation struct {
	Order int    `json:"order"`
	Stage string `json:"stage"`
	Type  string `json:"type"`
	// EvaluateOnPlan is kept, dropped or failed for an evaluate_on_plan
	// binding; empty for others (always kept).
	EvaluateOnPlan Verdict       `json:"evaluate_on_plan,omitempty"`
	PlanPolicies   *PolicyResult `json:"plan_policies,omitempty"`
	// ReEvaluate is runs, skipped or failed for a binding whose policies are
	// checked again just before the stage (re_evaluate_policies), evaluated as
	// if the user were identified; empty when nothing is checked then.
	ReEvaluate         Verdict       `json:"re_evaluate,omitempty"`
	ReEvaluatePolicies *PolicyResult `json:"re_evaluate_policies,omitempty"`
	// Verdict sums it up: runs, skipped, dropped, failed or not_reached.
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// ExplainOutcome is where the request ends up.
type ExplainOutcome struct {
	Result ExplainResult `json:"result"`
	// At is where it is decided: "selection", "authentication", "flow
	// policies" or "stage <name>"; empty when the plan proceeds.
	At      string `json:"at,omitempty"`
	Message string `json:"message,omitempty"`
	To      string `json:"to,omitempty"`
}

// Explain tells what the engine would do with a request: which flow a
// designation chooses, the flow's authentication requirement and policies, the
// plan with the evaluate_on_plan bindings dropped, and which planned stages the
// policies checked just before them skip. It runs the engine's own selection,
// planning and re-evaluation, but creates no execution or session, counts
// nothing, stores nothing and reports nothing to the observer: an explanation
// decides nothing. ErrNotFound for an unknown flow, ErrInvalidQuery for a bad query.
func (e *Engine) Explain(ctx context.Context, q ExplainQuery) (*Explanation, error) {
	if (q.Flow == "") == (q.Designation == "") {
		return nil, fmt.Errorf("name either a flow or a designation: %w", ErrInvalidQuery)
	}
	if q.SignedIn && q.User == nil {
		return nil, fmt.Errorf("signed in needs a user: %w", ErrInvalidQuery)
	}
	l := e.loaded.Load()
	quiet := &Engine{opts: e.opts}
	quiet.opts.Observer = noObserver{}
	req := explainRequest(q)
	x := &Explanation{
		SignedIn: q.SignedIn,
		Request:  ExplainedRequest{Method: req.Method, Scheme: req.Scheme, Host: req.Host, Path: req.Path, ClientIP: req.ClientIP},
		Plan:     []string{},
		Runs:     []string{},
	}
	if q.User != nil {
		x.User = q.User.Username
	}

	var flow *Flow
	if q.Designation != "" {
		d := Designation(q.Designation)
		if err := oneOf(d, Designations); err != nil {
			return nil, fmt.Errorf("designation: %v: %w", err, ErrInvalidQuery)
		}
		sel := &FlowSelection{Designation: d, Candidates: []FlowCandidate{}}
		x.Selection, x.Designation = sel, string(d)
		chosen, err := quiet.selectFlow(ctx, l, d, req, func(f *Flow, dec Decision) {
			v := VerdictDenied
			switch {
			case dec.Failed:
				v = VerdictFailed
			case dec.Passed:
				v = VerdictChosen
			}
			sel.Candidates = append(sel.Candidates, FlowCandidate{Slug: f.Slug, Order: f.Order, BuiltIn: f.BuiltIn,
				Verdict: v, Policies: policyResult(f.Policies, f.PolicyEngineMode, dec)})
		})
		for _, f := range l.byDesignation[d][len(sel.Candidates):] {
			sel.Candidates = append(sel.Candidates, FlowCandidate{Slug: f.Slug, Order: f.Order, BuiltIn: f.BuiltIn, Verdict: VerdictNotReached})
		}
		switch {
		case errors.Is(err, ErrPolicyFailed):
			x.Outcome = ExplainOutcome{Result: ExplainUnavailable, At: "selection", Message: UnavailableMessage}
			return x, nil
		case errors.Is(err, ErrNoFlow):
			x.Outcome = ExplainOutcome{Result: ExplainNoFlow, At: "selection",
				Message: fmt.Sprintf("No %s flow applies to this request.", strings.ReplaceAll(string(d), "_", " "))}
			return x, nil
		case err != nil:
			return nil, err
		}
		sel.Chosen, flow = chosen.Slug, chosen
	} else {
		f, ok := l.flows[q.Flow]
		if !ok {
			return nil, fmt.Errorf("flow %q: %w", q.Flow, ErrNotFound)
		}
		flow = f
	}
	x.Flow, x.Designation = flow.Slug, string(flow.Designation)

	// The execution Start would make, never stored.
	exec := &execution{Flow: flow.Slug}
	if raw := req.Query.Get("next"); raw != "" {
		if next, ok := e.opts.ValidateNext(raw, req); ok {
			exec.initialNext(next)
		} else {
			x.RejectedNext = raw
		}
	}
	exec.resetContext(req)

	x.Authentication = &RequirementCheck{Requirement: flow.Authentication, Met: true}
	if msg := unmetRequirement(flow, req); msg != "" {
		x.Authentication.Met, x.Authentication.Message = false, msg
	}
	x.Stages = make([]StageExplanation, len(flow.Stages))
	index := make(map[*StageBinding]int, len(flow.Stages))
	for i := range flow.Stages {
		b := &flow.Stages[i]
		index[b] = i
		x.Stages[i] = StageExplanation{Order: b.Order, Stage: b.Stage, Type: l.stages[b.Stage].def.Type, Verdict: VerdictNotReached}
	}
	failedAt := ""
	exec.explain = func(b *StageBinding, d Decision) {
		if b == nil {
			x.FlowPolicies = policyResult(flow.Policies, flow.PolicyEngineMode, d)
			return
		}
		s := &x.Stages[index[b]]
		s.PlanPolicies = policyResult(b.Policies, b.PolicyEngineMode, d)
		switch {
		case d.Failed:
			s.EvaluateOnPlan, s.Verdict = VerdictFailed, VerdictFailed
			s.Reason = "a policy errored at planning and sets no failure_result: the execution stops"
			failedAt = "stage " + b.Stage
		case d.Passed:
			s.EvaluateOnPlan = VerdictKept
		default:
			s.EvaluateOnPlan, s.Verdict = VerdictDropped, VerdictDropped
			s.Reason = "its evaluate_on_plan policies fail at planning"
		}
	}
	if resp := quiet.plan(ctx, l, flow, exec, req); resp != nil {
		at := "flow policies"
		switch {
		case !x.Authentication.Met:
			at = "authentication"
		case failedAt != "":
			at = failedAt
		}
		x.Outcome = outcomeOf(resp, at)
		return x, nil
	}
	for _, entry := range exec.Plan {
		x.Plan = append(x.Plan, entry.Stage)
	}

	// Just before each stage, as if the user had been identified by then.
	pending := q.User
	if pending != nil {
		exec.Context[CtxPendingUser] = pending.ID
		if !q.SignedIn {
			exec.Context[CtxPendingUserIdentifier] = pending.Username
		}
	}
	for _, entry := range exec.Plan {
		b, st := lookupBinding(l, flow, entry)
		s := &x.Stages[index[b]]
		if b.ReEvaluatePolicies && hasEnabled(b.Policies) {
			d := quiet.recheck(ctx, l, flow, b, st, pending, req, exec.Context)
			s.ReEvaluatePolicies = policyResult(b.Policies, b.PolicyEngineMode, d)
			switch {
			case d.Failed:
				s.ReEvaluate, s.Verdict = VerdictFailed, VerdictFailed
				s.Reason = "a policy errored just before the stage and sets no failure_result: the execution stops"
				x.Outcome = ExplainOutcome{Result: ExplainUnavailable, At: "stage " + b.Stage, Message: UnavailableMessage}
				return x, nil
			case !d.Passed:
				s.ReEvaluate, s.Verdict = VerdictSkipped, VerdictSkipped
				s.Reason = "its policies, checked just before the stage, fail"
				continue
			}
			s.ReEvaluate = VerdictRuns
		}
		s.Verdict = VerdictRuns
		x.Runs = append(x.Runs, b.Stage)
		if st.def.Type == "deny" {
			s.Reason = "a deny stage: the flow ends here"
			x.Outcome = ExplainOutcome{Result: ExplainDenied, At: "stage " + b.Stage}
			return x, nil
		}
	}
	x.Outcome = ExplainOutcome{Result: ExplainProceeds}
	return x, nil
}

// explainRequest is the query's request as Start would see it.
func explainRequest(q ExplainQuery) *Request {
	r := Request{}
	if q.Request != nil {
		r = *q.Request
	}
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Path == "" {
		r.Path = "/"
	}
	r.User = nil
	if q.SignedIn {
		r.User = q.User
	} else {
		r.Session = nil
	}
	return &r
}

// policyResult pairs a decision's records with the enabled bindings they came
// from: evaluateBindings records them in order and stops at a failure.
func policyResult(bindings []PolicyBinding, mode EngineMode, d Decision) *PolicyResult {
	p := &PolicyResult{Mode: mode, Passed: d.Passed, Failed: d.Failed, Messages: d.Messages, Bindings: []BindingResult{}}
	i := 0
	for _, b := range bindings {
		if !b.Enabled {
			continue
		}
		if i >= len(d.Records) {
			break
		}
		r := BindingResult{PolicyRecord: d.Records[i], Negate: b.Negate}
		if b.FailureResultSet {
			v := b.FailureResult
			r.FailureResult = &v
		}
		p.Bindings = append(p.Bindings, r)
		i++
	}
	return p
}

func outcomeOf(resp *Response, at string) ExplainOutcome {
	switch {
	case resp.Type == TypeRedirect:
		return ExplainOutcome{Result: ExplainRedirect, At: at, To: resp.To}
	case resp.Message == UnavailableMessage:
		return ExplainOutcome{Result: ExplainUnavailable, At: at, Message: resp.Message}
	}
	return ExplainOutcome{Result: ExplainDenied, At: at, Message: resp.Message}
}

// Text renders the explanation as a plain-text report.
func (x *Explanation) Text() string {
	var w strings.Builder
	who := "an anonymous visitor"
	switch {
	case x.User != "" && x.SignedIn:
		who = x.User + ", signed in"
	case x.User != "":
		who = x.User + ", not signed in"
	}
	target := "designation " + x.Designation
	if x.Flow != "" {
		target = "flow " + x.Flow + " (" + x.Designation + ")"
	}
	fmt.Fprintf(&w, "Explaining %s for %s\n", target, who)
	if x.User != "" && !x.SignedIn {
		fmt.Fprintf(&w, "  Selection and planning see an anonymous visitor; policies checked just before a stage\n")
		fmt.Fprintf(&w, "  are evaluated as if the user were identified (pending user %s).\n", x.User)
	}
	r := x.Request
	fmt.Fprintf(&w, "Request: %s %s", r.Method, r.Path)
	if r.Host != "" {
		fmt.Fprintf(&w, " on %s://%s", r.Scheme, r.Host)
	}
	if r.ClientIP != "" {
		fmt.Fprintf(&w, " from %s", r.ClientIP)
	}
	w.WriteString("\n")
	if x.RejectedNext != "" {
		fmt.Fprintf(&w, "  next %q is not a valid target: dropped (the default target is used)\n", x.RejectedNext)
	}

	if s := x.Selection; s != nil {
		fmt.Fprintf(&w, "\nDesignation %s, flows in selection order:\n", s.Designation)
		if len(s.Candidates) == 0 {
			w.WriteString("  (none)\n")
		}
		for i, c := range s.Candidates {
			builtIn := ""
			if c.BuiltIn {
				builtIn = ", built-in"
			}
			fmt.Fprintf(&w, "  %d. %s (order %d%s): %s\n", i+1, c.Slug, c.Order, builtIn, verdictText(c.Verdict))
			if c.Policies != nil && len(c.Policies.Bindings) > 0 {
				writePolicies(&w, "       ", "flow policies", c.Policies)
			}
		}
	}

	if x.Authentication != nil {
		a := x.Authentication
		met := "met"
		if !a.Met {
			met = "not met: " + a.Message
		}
		fmt.Fprintf(&w, "\nAuthentication requirement: %s (%s)\n", a.Requirement, met)
	}
	if x.FlowPolicies != nil {
		writePolicies(&w, "", "Flow policies", x.FlowPolicies)
	}
	if len(x.Stages) > 0 {
		w.WriteString("Stages by order:\n")
		for _, s := range x.Stages {
			fmt.Fprintf(&w, "  %d %s: %s [%s]", s.Order, s.Stage, verdictText(s.Verdict), s.Type)
			if s.Reason != "" {
				fmt.Fprintf(&w, " — %s", s.Reason)
			}
			w.WriteString("\n")
			if s.PlanPolicies != nil {
				writePolicies(&w, "       ", "evaluate_on_plan, at planning", s.PlanPolicies)
			}
			if s.ReEvaluatePolicies != nil {
				writePolicies(&w, "       ", "re_evaluate_policies, evaluated as if the user were identified", s.ReEvaluatePolicies)
			}
		}
	}
	if x.Authentication != nil {
		fmt.Fprintf(&w, "Plan: %s\n", listText(x.Plan))
		fmt.Fprintf(&w, "Runs: %s\n", listText(x.Runs))
	}

	o := x.Outcome
	fmt.Fprintf(&w, "\nOutcome: %s", strings.ReplaceAll(string(o.Result), "_", " "))
	if o.At != "" {
		fmt.Fprintf(&w, " at %s", o.At)
	}
	switch {
	case o.To != "":
		fmt.Fprintf(&w, ", to %s", o.To)
	case o.Message != "":
		fmt.Fprintf(&w, ": %q", o.Message)
	}
	if o.Result == ExplainProceeds {
		w.WriteString(": the planned stages run; each then judges the user's answers")
	}
	w.WriteString("\n")
	return w.String()
}

func verdictText(v Verdict) string { return strings.ReplaceAll(string(v), "_", " ") }

func listText(l []string) string {
	if len(l) == 0 {
		return "(nothing)"
	}
	return strings.Join(l, ", ")
}

func writePolicies(w *strings.Builder, indent, label string, p *PolicyResult) {
	result := "fail"
	switch {
	case p.Failed:
		result = "error"
	case p.Passed && len(p.Bindings) == 0:
		result = "pass (no enabled bindings)"
	case p.Passed:
		result = "pass"
	}
	fmt.Fprintf(w, "%s%s (%s) → %s\n", indent, label, p.Mode, result)
	for _, b := range p.Bindings {
		name := b.Binding
		if b.Negate {
			name += " (negated)"
		}
		var line string
		switch {
		case b.Error != "" && b.FailureResult != nil:
			line = fmt.Sprintf("error: %s; failure_result %t decides", b.Error, *b.FailureResult)
		case b.Error != "":
			line = fmt.Sprintf("error: %s; no failure_result, so the execution stops with %q", b.Error, UnavailableMessage)
		case b.Outcome:
			line = "pass"
		default:
			line = "fail"
		}
		if len(b.Messages) > 0 {
			line += fmt.Sprintf(" %q", b.Messages)
		}
		fmt.Fprintf(w, "%s  %s: %s\n", indent, name, line)
	}
}
