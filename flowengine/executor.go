package flowengine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// execution is the saved state of one run of a flow.
type execution struct {
	ID      string                    `json:"id"`
	Flow    string                    `json:"flow"`
	Plan    []planEntry               `json:"plan"`
	Current int                       `json:"current"`
	Checked bool                      `json:"checked"`
	Context map[string]any            `json:"context"`
	State   map[string]map[string]any `json:"state,omitempty"`
	CSRF    string                    `json:"csrf"`
	// Binding is the SHA-256 of the secret half of the handle that only the
	// browser running the execution holds: knowing the ID is not enough.
	Binding   string    `json:"binding"`
	StartedAt time.Time `json:"started_at"`
	// Flash keeps the errors and messages of a rejected answer for the next
	// rendering, so an HTML form can redirect after POST and still show them.
	Flash *flash `json:"flash,omitempty"`
	// Shown lists the plan positions that have shown the visitor a page, for
	// "Step N of M".
	Shown []int `json:"shown,omitempty"`
	// Link is the mailed link this execution's handle currently is, if any.
	Link *linkToken `json:"link,omitempty"`

	secret     string // the handle's secret, known only while serving its holder
	rotate     bool   // an answer moved the flow on: give it a new ID and secret
	retired    string // the stored ID this request moved away from, deleted on save
	newSession *Session
	endSession bool
	records    []PolicyRecord
	flashShown bool // this rendering consumed the flash: do not save it again
	// explain, set only by Explain, hears each planning decision (b nil: the
	// flow's own policies).
	explain func(b *StageBinding, d Decision)
}

type flash struct {
	Errors   map[string][]string `json:"errors,omitempty"`
	Messages []string            `json:"messages,omitempty"`
}

// planEntry names a stage binding by stage and order, so a configuration change
// during an execution is detected rather than silently mapped to another stage.
type planEntry struct {
	Stage string `json:"stage"`
	Order int    `json:"order"`
	// Inserted marks a stage a running stage added to the plan (an
	// authenticator_validate's configuration stage): it has no binding in the
	// flow, so no policies of its own.
	Inserted bool `json:"inserted,omitempty"`
}

const maxAnswerValue = 8 << 10

// Start plans a new execution of the flow with this slug and runs it up to its
// first challenge. The request's "next" query parameter is validated and kept;
// its CarryParam seeds the context a redirect stage carried (see takeCarried).
func (e *Engine) Start(ctx context.Context, slug string, req *Request) (*Result, error) {
	l := e.loaded.Load()
	flow, ok := l.flows[slug]
	if !ok {
		return nil, fmt.Errorf("flow %q: %w", slug, ErrNotFound)
	}
	exec := &execution{Flow: slug, StartedAt: e.opts.Clock.Now()}
	exec.newIdentity()
	res := &Result{}
	if raw := req.Query.Get("next"); raw != "" {
		if next, ok := e.opts.ValidateNext(raw, req); ok {
			exec.initialNext(next)
		} else {
			res.RejectedNext = raw
		}
	}
	exec.resetContext(req)
	if key := req.Query.Get(CarryParam); key != "" {
		if err := e.takeCarried(ctx, slug, key, exec, req); err != nil {
			return nil, err
		}
	}
	if resp := e.plan(ctx, l, flow, exec, req); resp != nil {
		res.Response = *resp
		res.Records = exec.records
		res.Next = exec.next()
		return res, nil
	}
	return e.run(ctx, l, flow, exec, req, nil, nil, res)
}

// Resume returns the current challenge of an execution (e.g. to render it again).
// handle is Result.ExecutionID as the browser gave it back.
func (e *Engine) Resume(ctx context.Context, handle string, req *Request) (*Result, error) {
	return e.step(ctx, handle, req, nil, false)
}

// Answer submits an answer to the current challenge of an execution. An answer with
// keys that are not fields of the challenge is refused with ErrInvalidAnswer and
// nothing changes. A second answer while one is being processed gets ErrBusy.
func (e *Engine) Answer(ctx context.Context, handle string, req *Request, answer map[string]any) (*Result, error) {
	if answer == nil {
		answer = map[string]any{}
	}
	return e.step(ctx, handle, req, answer, false)
}

// step runs one request on an execution, one at a time: parallel answers would
// each pass the checks on the same saved state (failure counts, lock checks).
func (e *Engine) step(ctx context.Context, handle string, req *Request, answer map[string]any, token bool) (*Result, error) {
	l, flow, exec, err := e.load(ctx, handle)
	if err != nil {
		return nil, err
	}
	release, err := e.acquire(ctx, exec.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	// Read again under the lock: the answer that held it may have moved on.
	if l, flow, exec, err = e.load(ctx, handle); err != nil {
		return nil, err
	}
	// Every answer moves the execution to a new ID and secret, so whoever
	// planted or saw the old handle (flow fixation) cannot follow the user who
	// identified and typed a password into it.
	exec.rotate = answer != nil
	if token {
		if err := exec.redeemLink(e.opts.Clock.Now()); err != nil {
			return nil, err
		}
	}
	return e.run(ctx, l, flow, exec, req, answer, nil, &Result{})
}

// busyTTL bounds how long a crashed request can hold an execution.
const busyTTL = 30 * time.Second

func (e *Engine) acquire(ctx context.Context, id string) (func(), error) {
	key := "execution:busy:" + id
	n, err := e.opts.Store.IncrCounter(ctx, key, busyTTL)
	if err != nil {
		return nil, fmt.Errorf("locking flow execution: %w", err)
	}
	if n > 1 {
		return nil, ErrBusy
	}
	return func() { _ = e.opts.Store.DeleteCounter(context.WithoutCancel(ctx), key) }, nil
}

// CSRFToken returns the token bound to an execution.
func (e *Engine) CSRFToken(ctx context.Context, handle string) (string, error) {
	_, _, exec, err := e.load(ctx, handle)
	if err != nil {
		return "", err
	}
	return exec.CSRF, nil
}

// newIdentity gives the execution a fresh ID, secret and CSRF token. The handle
// given to the browser is "<id>.<secret>"; the store keeps only the secret's hash.
func (x *execution) newIdentity() {
	x.ID, x.secret, x.CSRF = randomID(), randomID(), randomID()
	sum := sha256.Sum256([]byte(x.secret))
	x.Binding = hex.EncodeToString(sum[:])
}

func (x *execution) handle() string { return x.ID + "." + x.secret }

// rotateNow gives the execution its new identity at once (a stage needs the
// handle it will have); the stored record under the old ID goes when it is saved.
func (x *execution) rotateNow() {
	if x.retired == "" {
		x.retired = x.ID
	}
	x.newIdentity()
	x.rotate = false
}

func (e *Engine) load(ctx context.Context, handle string) (*loaded, *Flow, *execution, error) {
	id, secret, ok := strings.Cut(handle, ".")
	if !ok || id == "" || secret == "" || len(handle) > 256 {
		return nil, nil, nil, ErrExpired
	}
	raw, err := e.opts.Store.GetExecution(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrExpired
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("loading flow execution: %w", err)
	}
	exec := &execution{}
	if err := json.Unmarshal(raw, exec); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding flow execution: %w", ErrExpired)
	}
	sum := sha256.Sum256([]byte(secret))
	if exec.ID != id || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(exec.Binding)) != 1 {
		// The ID without its secret (a planted or leaked ID) continues nothing.
		return nil, nil, nil, ErrExpired
	}
	exec.secret = secret
	if exec.Context == nil {
		exec.Context = map[string]any{}
	}
	l := e.loaded.Load()
	flow, ok := l.flows[exec.Flow]
	if !ok {
		return nil, nil, nil, ErrExpired
	}
	return l, flow, exec, nil
}

func (x *execution) initialNext(next string) { x.Context = map[string]any{CtxNext: next} }

// next is the validated next target the execution was started with.
func (x *execution) next() string {
	n, _ := x.Context[CtxNext].(string)
	return n
}

// resetContext clears the plan context, keeping only what the flow was started with.
func (x *execution) resetContext(req *Request) {
	next, _ := x.Context[CtxNext].(string)
	x.Context = map[string]any{}
	if next != "" {
		x.Context[CtxNext] = next
	}
	// A flow started by a logged-in user acts on that user.
	if req.User != nil {
		x.Context[CtxPendingUser] = req.User.ID
	}
	x.State = nil
	x.Link = nil
}

// plan builds the execution's stage list. It returns a terminal response when the
// flow does not apply (authentication requirement or flow policies).
func (e *Engine) plan(ctx context.Context, l *loaded, flow *Flow, exec *execution, req *Request) *Response {
	if msg := unmetRequirement(flow, req); msg != "" {
		return e.deniedAction(flow, exec, []string{msg})
	}
	in := PolicyInput(req, flow, nil, req.User, req.User != nil, exec.Context)
	l.addReputation(flow.Policies, req, req.User, exec.Context, in)
	d := e.evaluate(ctx, l, flow.Slug, "flow "+flow.Slug, flow.Policies, flow.PolicyEngineMode, req.User, in)
	exec.records = append(exec.records, d.Records...)
	exec.heard(nil, d)
	if d.Failed {
		return unavailable()
	}
	if !d.Passed {
		return e.deniedAction(flow, exec, d.Messages)
	}
	exec.Plan = exec.Plan[:0]
	var names []any
	for i := range flow.Stages {
		b := &flow.Stages[i]
		st := l.stages[b.Stage]
		if b.EvaluateOnPlan {
			in := PolicyInput(req, flow, st.def, req.User, req.User != nil, exec.Context)
			l.addReputation(b.Policies, req, req.User, exec.Context, in)
			d := e.evaluate(ctx, l, flow.Slug, "stage "+b.Stage, b.Policies, b.PolicyEngineMode, req.User, in)
			exec.records = append(exec.records, d.Records...)
			exec.heard(b, d)
			if d.Failed {
				return unavailable()
			}
			if !d.Passed {
				continue
			}
		}
		exec.Plan = append(exec.Plan, planEntry{Stage: b.Stage, Order: b.Order})
		names = append(names, b.Stage)
	}
	exec.Context[CtxFlowPlan] = names
	exec.Current, exec.Checked, exec.Shown = 0, false, nil
	return nil
}

// unmetRequirement is why the flow's authentication requirement turns this
// request away, or "" if it does not.
func unmetRequirement(flow *Flow, req *Request) string {
	switch {
	case flow.Authentication == AuthRequireAuthenticated && req.User == nil:
		return "You need to sign in first."
	case flow.Authentication == AuthRequireUnauthenticated && req.User != nil:
		return "You are already signed in."
	}
	return ""
}

// heard passes a planning decision to Explain when it is listening.
func (x *execution) heard(b *StageBinding, d Decision) {
	if x.explain != nil {
		x.explain(b, d)
	}
}

// unavailable is the generic denial that ends an execution whose policy failed.
func unavailable() *Response { return &Response{Type: TypeDenied, Message: UnavailableMessage} }

func (e *Engine) deniedAction(flow *Flow, exec *execution, messages []string) *Response {
	next, _ := exec.Context[CtxNext].(string)
	switch flow.DeniedAction {
	case DeniedContinue:
		if next == "" {
			next = e.opts.DefaultTarget
		}
		return &Response{Type: TypeRedirect, To: next}
	case DeniedMessageContinue:
		if next != "" {
			return &Response{Type: TypeRedirect, To: next}
		}
	}
	msg := strings.Join(messages, " ")
	if msg == "" {
		msg = "Access denied."
	}
	return &Response{Type: TypeDenied, Message: msg}
}

// run advances the execution: it re-evaluates policies before a stage, runs stages
// that need no input, feeds answer to the first challenge, and stops at the next
// challenge or at the end. The execution is saved only if the step succeeds.
func (e *Engine) run(ctx context.Context, l *loaded, flow *Flow, exec *execution, req *Request, answer map[string]any, messages []string, res *Result) (*Result, error) {
	finish := func(resp Response) (*Result, error) {
		for _, id := range []string{exec.ID, exec.retired} {
			if id == "" {
				continue
			}
			if err := e.opts.Store.DeleteExecution(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("ending flow execution: %w", err)
			}
		}
		result := "completed"
		if resp.Type == TypeDenied {
			result = "denied"
			if resp.Message == UnavailableMessage {
				result = "unavailable"
			}
		}
		e.opts.Observer.Observe(Event{Kind: EventExecution, Flow: flow.Slug, ClientIP: req.ClientIP, Result: result})
		res.Response = resp
		res.ExecutionID = ""
		res.NewSession, res.EndSession = exec.newSession, exec.endSession
		res.Records = exec.records
		res.Next = exec.next()
		return res, nil
	}
	for restarts := 0; ; {
		if exec.Current >= len(exec.Plan) {
			to, fallback := e.target(exec, req)
			res.DefaultTarget = fallback
			return finish(Response{Type: TypeRedirect, To: to})
		}
		entry := exec.Plan[exec.Current]
		b, st := lookupBinding(l, flow, entry)
		if b == nil {
			// The flow was changed under this execution.
			return nil, ErrExpired
		}
		sc := e.stageContext(l, flow, st, exec, req)
		if !exec.Checked {
			exec.Checked = true
			if b.ReEvaluatePolicies && hasEnabled(b.Policies) {
				user, err := sc.PendingUser(ctx)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return nil, err
				}
				if user == nil {
					user = req.User
				}
				d := e.recheck(ctx, l, flow, b, st, user, req, exec.Context)
				exec.records = append(exec.records, d.Records...)
				if d.Failed {
					// Skipping the stage could skip a deny: stop instead.
					return finish(*unavailable())
				}
				if !d.Passed {
					exec.Current, exec.Checked = exec.Current+1, false
					continue
				}
			}
		}
		ch, err := st.impl.Challenge(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", b.Stage, err)
		}
		var result Outcome
		submitted := time.Now()
		switch {
		case ch == nil:
			result, err = st.impl.Submit(ctx, sc, Answer{})
		case answer == nil:
			var errs map[string][]string
			if f := exec.Flash; f != nil {
				errs, messages = f.Errors, append(messages, f.Messages...)
				exec.Flash, exec.flashShown = nil, true
			}
			return e.challenge(ctx, l, flow, st, exec, ch, errs, messages, res)
		default:
			// The flash belonged to the page being answered: whatever comes
			// next (a retry, the next stage, a restarted flow) must not show
			// its errors again.
			exec.Flash = nil
			var ans Answer
			ans, result, err = checkAnswer(ch, answer)
			answer = nil
			if err != nil {
				return nil, err
			}
			if result.Kind == OutcomeContinue {
				result, err = st.impl.Submit(ctx, sc, ans)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", b.Stage, err)
		}
		e.opts.Observer.Observe(Event{Kind: EventStage, Flow: flow.Slug, Stage: b.Stage, Duration: time.Since(submitted)})
		switch result.Kind {
		case OutcomeContinue:
			exec.Current, exec.Checked = exec.Current+1, false
			continue
		case OutcomeDeny:
			return finish(Response{Type: TypeDenied, Message: strings.Join(result.Messages, " ")})
		case OutcomeWait:
			// The stage waits for something outside the flow (a mailed link):
			// show its challenge again.
			ch, err := st.impl.Challenge(ctx, sc)
			if err != nil {
				return nil, fmt.Errorf("stage %s: %w", b.Stage, err)
			}
			if ch == nil {
				return nil, fmt.Errorf("stage %s waits without a challenge", b.Stage)
			}
			return e.challenge(ctx, l, flow, st, exec, ch, nil, result.Messages, res)
		case OutcomeInvalid:
			if ch == nil {
				// A stage without input is retried only if it now asks
				// something (an email stage whose mail could not be sent);
				// otherwise end the flow.
				again, err := st.impl.Challenge(ctx, sc)
				if err != nil {
					return nil, fmt.Errorf("stage %s: %w", b.Stage, err)
				}
				if again == nil {
					return finish(Response{Type: TypeDenied, Message: strings.Join(result.Messages, " ")})
				}
				return e.challenge(ctx, l, flow, st, exec, again, result.Errors, result.Messages, res)
			}
			switch b.InvalidResponseAction {
			case InvalidRetry:
				ch, err := st.impl.Challenge(ctx, sc)
				if err != nil {
					return nil, fmt.Errorf("stage %s: %w", b.Stage, err)
				}
				return e.challenge(ctx, l, flow, st, exec, ch, result.Errors, result.Messages, res)
			case InvalidRestartWithContext:
				exec.Current, exec.Checked = 0, false
			default: // restart
				exec.resetContext(req)
				if resp := e.plan(ctx, l, flow, exec, req); resp != nil {
					return finish(*resp)
				}
			}
		case OutcomeCancel:
			exec.resetContext(req)
			if resp := e.plan(ctx, l, flow, exec, req); resp != nil {
				return finish(*resp)
			}
		}
		messages = result.Messages
		if restarts++; restarts > 3 {
			return finish(Response{Type: TypeDenied, Message: "The flow could not be completed."})
		}
	}
}

// recheck evaluates a re_evaluate_policies binding just before its stage runs,
// for the flow's pending user (the signed-in user until one is identified).
func (e *Engine) recheck(ctx context.Context, l *loaded, flow *Flow, b *StageBinding, st *loadedStage, user *User, req *Request, planCtx map[string]any) Decision {
	authenticated := req.User != nil && user != nil && user.ID == req.User.ID
	in := PolicyInput(req, flow, st.def, user, authenticated, planCtx)
	l.addReputation(b.Policies, req, user, planCtx, in)
	return e.evaluate(ctx, l, flow.Slug, "stage "+b.Stage, b.Policies, b.PolicyEngineMode, user, in)
}

// challenge saves the execution and answers with the current stage's
// challenge. errs and messages say why the last answer was refused (or the
// flow restarted); pages show them as errors.
func (e *Engine) challenge(ctx context.Context, l *loaded, flow *Flow, st *loadedStage, exec *execution, ch *Challenge, errs map[string][]string, messages []string, res *Result) (*Result, error) {
	exec.markShown()
	step, steps := exec.steps(l, flow)
	if exec.rotate {
		exec.rotateNow()
	}
	oldID := exec.retired
	raw, err := json.Marshal(exec)
	if err != nil {
		return nil, fmt.Errorf("encoding flow execution: %w", err)
	}
	if (len(errs) > 0 || len(messages) > 0) && !exec.flashShown {
		// Saved for one later rendering; the response below carries them too.
		withFlash := *exec
		withFlash.Flash = &flash{Errors: errs, Messages: messages}
		raw, err = json.Marshal(&withFlash)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding flow execution: %w", err)
	}
	ttl := e.opts.ExecutionTTL
	if exec.Link != nil {
		// A mailed link outlives a shorter execution timeout.
		if left := exec.Link.Expires.Sub(e.opts.Clock.Now()); left > ttl {
			ttl = left
		}
	}
	if err := e.opts.Store.PutExecution(ctx, exec.ID, raw, ttl); err != nil {
		return nil, fmt.Errorf("saving flow execution: %w", err)
	}
	if oldID != "" && oldID != exec.ID {
		if err := e.opts.Store.DeleteExecution(ctx, oldID); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("retiring flow execution: %w", err)
		}
	}
	exec.retired = ""
	res.Response = Response{
		Type:     TypeChallenge,
		Flow:     FlowInfo{Slug: flow.Slug, Title: flow.Title, Designation: string(flow.Designation)},
		Stage:    StageInfo{Name: st.def.Name, Type: st.def.Type, Step: step, Steps: steps},
		Fields:   ch.Fields,
		Errors:   errs,
		Messages: append(append([]string(nil), messages...), ch.Messages...),
		Data:     ch.Data,
		Refusals: len(messages),
	}
	res.Next = exec.next()
	res.ExecutionID = exec.handle()
	res.CSRFToken = exec.CSRF
	res.NewSession, res.EndSession = exec.newSession, exec.endSession
	res.Records = exec.records
	return res, nil
}

// checkAnswer refuses unknown keys and non-string values (ErrInvalidAnswer) and turns
// missing required fields into field errors.
func checkAnswer(ch *Challenge, answer map[string]any) (Answer, Outcome, error) {
	known := make(map[string]*Field, len(ch.Fields))
	for i := range ch.Fields {
		known[ch.Fields[i].Key] = &ch.Fields[i]
	}
	ans := make(Answer, len(answer))
	for k, v := range answer {
		f, ok := known[k]
		if !ok {
			return nil, Outcome{}, fmt.Errorf("unexpected field %q: %w", k, ErrInvalidAnswer)
		}
		switch x := v.(type) {
		case string:
			if len(x) > maxAnswerValue {
				return nil, Outcome{}, fmt.Errorf("field %q is too long: %w", k, ErrInvalidAnswer)
			}
			ans[k] = x
		case bool:
			if f.Type != FieldCheckbox {
				return nil, Outcome{}, fmt.Errorf("field %q must be a string: %w", k, ErrInvalidAnswer)
			}
			ans[k] = fmt.Sprint(x)
		default:
			return nil, Outcome{}, fmt.Errorf("field %q must be a string: %w", k, ErrInvalidAnswer)
		}
	}
	errs := map[string][]string{}
	for _, f := range ch.Fields {
		if f.Required && f.Type != FieldCheckbox && strings.TrimSpace(ans[f.Key]) == "" {
			errs[f.Key] = []string{"This field is required."}
		}
	}
	if len(errs) > 0 {
		return ans, Invalid(errs), nil
	}
	return ans, Continue(), nil
}

// markShown records that the current stage shows the visitor a page.
func (x *execution) markShown() {
	for _, i := range x.Shown {
		if i == x.Current {
			return
		}
	}
	x.Shown = append(x.Shown, x.Current)
}

// steps numbers the current page among the pages the visitor sees: Step counts
// the stages before it that showed a page, Steps adds the planned stages after
// it that will (see Interactive). Stages that need no input are not counted.
func (x *execution) steps(l *loaded, flow *Flow) (step, steps int) {
	step = 1
	for _, i := range x.Shown {
		if i < x.Current {
			step++
		}
	}
	steps = step
	earlier := make([]Stage, 0, len(x.Plan))
	for i, entry := range x.Plan {
		_, st := lookupBinding(l, flow, entry)
		if st == nil {
			continue
		}
		if i > x.Current {
			if in, ok := st.impl.(Interactive); !ok || in.Interactive(earlier) {
				steps++
			}
		}
		earlier = append(earlier, st.impl)
	}
	return step, steps
}

// target picks where a finished flow goes: context redirect, else next, else the
// default target (then fallback is true); every candidate passes the next
// validator.
func (e *Engine) target(exec *execution, req *Request) (to string, fallback bool) {
	for _, key := range []string{CtxRedirect, CtxNext} {
		if v, _ := exec.Context[key].(string); v != "" {
			if t, ok := e.opts.ValidateNext(v, req); ok {
				return t, false
			}
		}
	}
	return e.opts.DefaultTarget, true
}

func (e *Engine) stageContext(l *loaded, flow *Flow, st *loadedStage, exec *execution, req *Request) *StageContext {
	if exec.State == nil {
		exec.State = map[string]map[string]any{}
	}
	state := exec.State[st.def.Name]
	if state == nil {
		state = map[string]any{}
		exec.State[st.def.Name] = state
	}
	return &StageContext{
		Flow:      flow,
		StageName: st.def.Name,
		StageType: st.def.Type,
		Request:   req,
		Context:   exec.Context,
		State:     state,
		Store:     e.opts.Store,
		Clock:     e.opts.Clock,
		Services:  e.opts.Services,
		exec:      exec,
		loaded:    l,
		observer:  e.opts.Observer,
	}
}

func lookupBinding(l *loaded, flow *Flow, entry planEntry) (*StageBinding, *loadedStage) {
	if entry.Inserted {
		st, ok := l.stages[entry.Stage]
		if !ok {
			return nil, nil
		}
		return &StageBinding{Stage: entry.Stage, Order: entry.Order, PolicyEngineMode: ModeAny,
			InvalidResponseAction: InvalidRetry}, st
	}
	for i := range flow.Stages {
		b := &flow.Stages[i]
		if b.Stage == entry.Stage && b.Order == entry.Order {
			if st, ok := l.stages[b.Stage]; ok {
				return b, st
			}
		}
	}
	return nil, nil
}

func hasEnabled(bindings []PolicyBinding) bool {
	for _, b := range bindings {
		if b.Enabled {
			return true
		}
	}
	return false
}

// randomID returns 256 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("flowengine: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewID returns a fresh random identifier (session and user IDs).
func NewID() string { return randomID() }
