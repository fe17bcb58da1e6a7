package flowengine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultExecutionTTL is how long an unfinished flow execution is kept.
const DefaultExecutionTTL = 30 * time.Minute

// Options configure an Engine. Store, Stages and Policies are required.
type Options struct {
	Store Store
	// Stages maps stage type names to factories (flowengine/stages.Types()).
	Stages map[string]StageFactory
	// Policies compiles Rego modules (policies.Compile).
	Policies PolicyCompiler
	// Clock defaults to the system clock.
	Clock Clock
	// ValidateNext checks every redirect target (default RelativeNext).
	ValidateNext NextValidator
	// ExecutionTTL bounds an unfinished execution (default 30 min).
	ExecutionTTL time.Duration
	// DefaultTarget is where a finished flow goes without redirect or next (default "/").
	DefaultTarget string
	Services      Services
	// Observer hears every decision (metrics, audit log); default none.
	Observer Observer
}

// Engine plans and executes flows. It is safe for concurrent use; a configuration
// change swaps the compiled configuration atomically.
type Engine struct {
	opts    Options
	loaded  atomic.Pointer[loaded]
	applyMu sync.Mutex // one Apply at a time, so none loses another's entries
}

// loaded is a validated, compiled configuration.
type loaded struct {
	cfg           *Config
	flows         map[string]*Flow
	byDesignation map[Designation][]*Flow
	stages        map[string]*loadedStage
	policies      PolicyEvaluator
	// reputation names the policies that read input.reputation: only their
	// evaluations pay for reading the regulation counters.
	reputation map[string]bool
}

type loadedStage struct {
	def  *StageDef
	impl Stage
}

// New returns an engine with an empty configuration; call Reload to load the store's.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Stages == nil || opts.Policies == nil {
		return nil, errors.New("flowengine: Store, Stages and Policies are required")
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.ValidateNext == nil {
		opts.ValidateNext = RelativeNext
	}
	if opts.ExecutionTTL <= 0 {
		opts.ExecutionTTL = DefaultExecutionTTL
	}
	if opts.DefaultTarget == "" {
		opts.DefaultTarget = "/"
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	e := &Engine{opts: opts}
	empty, err := e.compile(&Config{})
	if err != nil {
		return nil, err
	}
	e.loaded.Store(empty)
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.opts.Store }

// Clock returns the engine's clock.
func (e *Engine) Clock() Clock { return e.opts.Clock }

// Reload loads the stored configuration, compiles it and makes it live.
func (e *Engine) Reload(ctx context.Context) error {
	cfg, _, err := e.opts.Store.LoadConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading flow configuration: %w", err)
	}
	l, err := e.compile(cfg)
	if err != nil {
		return err
	}
	e.loaded.Store(l)
	return nil
}

// Change is one all-or-nothing update of the flow configuration: entries
// upserted by slug or name, entries removed (a blueprint's state: absent), and
// seed users.
type Change struct {
	Config *Config
	Remove Removal
	Users  []SeedUser
}

// Removal names flows, stages and policies to delete.
type Removal struct {
	Flows    []string
	Stages   []string
	Policies []string
}

func (r Removal) empty() bool { return len(r.Flows)+len(r.Stages)+len(r.Policies) == 0 }

// Apply merges the change into the stored configuration (upsert by slug or name,
// then removals), validates the result, stores it together with the seed users in
// one atomic step and makes it live. On error nothing was changed.
func (e *Engine) Apply(ctx context.Context, ch Change) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if err := validateUsers(ch.Users); err != nil {
		return err
	}
	// Merge onto what the store holds, and store the result only if nobody
	// (another replica) changed it meanwhile; else merge again onto theirs.
	for attempt := 0; attempt < applyAttempts; attempt++ {
		if attempt > 0 {
			// Lost a race: let the other writer finish, with jitter so two
			// replicas retrying do not collide again.
			select {
			case <-ctx.Done():
				return fmt.Errorf("storing flow configuration: %w", ctx.Err())
			case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond):
			}
		}
		base, rev, err := e.opts.Store.LoadConfig(ctx)
		if err != nil {
			return fmt.Errorf("loading flow configuration: %w", err)
		}
		merged := Remove(Merge(base, ch.Config), ch.Remove)
		l, err := e.compile(merged)
		if err != nil {
			return err
		}
		err = e.opts.Store.ApplyConfig(ctx, rev, merged, ch.Users)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return fmt.Errorf("storing flow configuration: %w", err)
		}
		e.loaded.Store(l)
		return nil
	}
	return fmt.Errorf("storing flow configuration: %d tries: %w", applyAttempts, ErrStale)
}

// DeleteFlow removes one flow; ErrNotFound if there is none with that slug.
func (e *Engine) DeleteFlow(ctx context.Context, slug string) error {
	if _, err := e.Flow(slug); err != nil {
		return err
	}
	return e.Apply(ctx, Change{Remove: Removal{Flows: []string{slug}}})
}

// Remove returns cfg without the named entries.
func Remove(cfg *Config, r Removal) *Config {
	if r.empty() {
		return cfg
	}
	drop := func(names []string) map[string]bool {
		m := make(map[string]bool, len(names))
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	flows, stages, pols := drop(r.Flows), drop(r.Stages), drop(r.Policies)
	out := &Config{}
	for _, f := range cfg.Flows {
		if !flows[f.Slug] {
			out.Flows = append(out.Flows, f)
		}
	}
	for _, s := range cfg.Stages {
		if !stages[s.Name] {
			out.Stages = append(out.Stages, s)
		}
	}
	for _, p := range cfg.Policies {
		if !pols[p.Name] {
			out.Policies = append(out.Policies, p)
		}
	}
	return out
}

// applyAttempts bounds how often Apply merges again after losing a race.
const applyAttempts = 10

// Config returns a copy of the live configuration, sorted by slug and name.
func (e *Engine) Config() *Config {
	c := e.loaded.Load().cfg
	out := &Config{
		Flows:    append([]Flow(nil), c.Flows...),
		Stages:   append([]StageDef(nil), c.Stages...),
		Policies: append([]Policy(nil), c.Policies...),
	}
	return out
}

// Flow returns the live flow with this slug.
func (e *Engine) Flow(slug string) (*Flow, error) {
	f, ok := e.loaded.Load().flows[slug]
	if !ok {
		return nil, fmt.Errorf("flow %q: %w", slug, ErrNotFound)
	}
	return f, nil
}

// FindFlow picks the first flow of a designation, by order then slug (built-in
// flows last), whose flow policies pass for this request; ErrNoFlow if none does,
// ErrPolicyFailed if a policy errors on the way.
func (e *Engine) FindFlow(ctx context.Context, d Designation, req *Request) (*Flow, error) {
	return e.selectFlow(ctx, e.loaded.Load(), d, req, nil)
}

// selectFlow is FindFlow on one configuration; seen, if set, hears each
// candidate's decision (Explain).
func (e *Engine) selectFlow(ctx context.Context, l *loaded, d Designation, req *Request, seen func(*Flow, Decision)) (*Flow, error) {
	for _, f := range l.byDesignation[d] {
		in := PolicyInput(req, f, nil, req.User, req.User != nil, nil)
		l.addReputation(f.Policies, req, req.User, nil, in)
		d := e.evaluate(ctx, l, f.Slug, "flow "+f.Slug, f.Policies, f.PolicyEngineMode, req.User, in)
		if seen != nil {
			seen(f, d)
		}
		if d.Failed {
			// Falling through to the next flow could pick a weaker one.
			return nil, fmt.Errorf("flow %s: %w", f.Slug, ErrPolicyFailed)
		}
		if d.Passed {
			return f, nil
		}
	}
	return nil, fmt.Errorf("designation %s: %w", d, ErrNoFlow)
}

// Merge returns base with every flow, stage and policy of patch upserted by slug or
// name, sorted for deterministic storage and export.
func Merge(base, patch *Config) *Config {
	out := &Config{}
	flows := map[string]Flow{}
	stages := map[string]StageDef{}
	pols := map[string]Policy{}
	for _, c := range []*Config{base, patch} {
		if c == nil {
			continue
		}
		for _, f := range c.Flows {
			flows[f.Slug] = f
		}
		for _, s := range c.Stages {
			stages[s.Name] = s
		}
		for _, p := range c.Policies {
			pols[p.Name] = p
		}
	}
	for _, f := range flows {
		out.Flows = append(out.Flows, f)
	}
	for _, s := range stages {
		out.Stages = append(out.Stages, s)
	}
	for _, p := range pols {
		out.Policies = append(out.Policies, p)
	}
	sort.Slice(out.Flows, func(i, j int) bool { return out.Flows[i].Slug < out.Flows[j].Slug })
	sort.Slice(out.Stages, func(i, j int) bool { return out.Stages[i].Name < out.Stages[j].Name })
	sort.Slice(out.Policies, func(i, j int) bool { return out.Policies[i].Name < out.Policies[j].Name })
	return out
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// compile validates cfg and builds the live form. Every problem found is reported,
// each as a *ValidationError naming its entry.
func (e *Engine) compile(cfg *Config) (*loaded, error) {
	var errs []error
	bad := func(kind, name, field string, err error) {
		errs = append(errs, &ValidationError{Kind: kind, Name: name, Field: field, Err: err})
	}
	l := &loaded{
		cfg:           cfg,
		flows:         map[string]*Flow{},
		byDesignation: map[Designation][]*Flow{},
		stages:        map[string]*loadedStage{},
	}

	modules := map[string]string{}
	for _, p := range cfg.Policies {
		if p.Name == "" {
			bad("policy", "(unnamed)", "name", errors.New("is required"))
			continue
		}
		if _, dup := modules[p.Name]; dup {
			bad("policy", p.Name, "", errors.New("duplicate name"))
			continue
		}
		modules[p.Name] = p.Rego
		if strings.Contains(p.Rego, "reputation") {
			if l.reputation == nil {
				l.reputation = map[string]bool{}
			}
			l.reputation[p.Name] = true
		}
	}
	ev, err := e.opts.Policies(modules)
	if err != nil {
		errs = append(errs, err)
	}
	l.policies = ev

	for i := range cfg.Stages {
		def := &cfg.Stages[i]
		if def.Name == "" {
			bad("stage", "(unnamed)", "name", errors.New("is required"))
			continue
		}
		if _, dup := l.stages[def.Name]; dup {
			bad("stage", def.Name, "", errors.New("duplicate name"))
			continue
		}
		factory, ok := e.opts.Stages[def.Type]
		if !ok {
			bad("stage", def.Name, "type", fmt.Errorf("unknown stage type %q", def.Type))
			continue
		}
		impl, err := factory(*def)
		if err != nil {
			bad("stage", def.Name, "config", err)
			continue
		}
		if pu, ok := impl.(PolicyUser); ok {
			for _, name := range pu.PolicyNames() {
				if _, ok := modules[name]; !ok {
					bad("stage", def.Name, "config", fmt.Errorf("unknown policy %q", name))
				}
			}
		}
		l.stages[def.Name] = &loadedStage{def: def, impl: impl}
	}
	for i := range cfg.Stages {
		def := &cfg.Stages[i]
		st, ok := l.stages[def.Name]
		if !ok || st.def != def {
			continue
		}
		if su, ok := st.impl.(StageUser); ok {
			for _, name := range su.StageNames() {
				if _, ok := l.stages[name]; !ok {
					bad("stage", def.Name, "config", fmt.Errorf("unknown stage %q", name))
				}
			}
		}
	}

	for i := range cfg.Flows {
		f := normalizeFlow(cfg.Flows[i])
		name := f.Slug
		if !slugPattern.MatchString(f.Slug) {
			bad("flow", fmt.Sprintf("%q", f.Slug), "slug", errors.New("must be lower-case letters, digits, - or _"))
			continue
		}
		if _, dup := l.flows[f.Slug]; dup {
			bad("flow", name, "", errors.New("duplicate slug"))
			continue
		}
		for _, check := range []struct {
			field string
			err   error
		}{
			{"designation", oneOf(f.Designation, Designations)},
			{"denied_action", oneOf(f.DeniedAction, DeniedActions)},
			{"policy_engine_mode", oneOf(f.PolicyEngineMode, EngineModes)},
			{"authentication", oneOf(f.Authentication, AuthRequirements)},
		} {
			if check.err != nil {
				bad("flow", name, check.field, check.err)
			}
		}
		for j, pb := range f.Policies {
			if err := checkPolicyBinding(pb, modules); err != nil {
				bad("flow", name, fmt.Sprintf("policies[%d]", j), err)
			}
		}
		for j, sb := range f.Stages {
			field := fmt.Sprintf("stages[%d]", j)
			if _, ok := l.stages[sb.Stage]; !ok && stageType(cfg, sb.Stage) == "" {
				bad("flow", name, field, fmt.Errorf("unknown stage %q", sb.Stage))
			}
			if err := oneOf(sb.PolicyEngineMode, EngineModes); err != nil {
				bad("flow", name, field+".policy_engine_mode", err)
			}
			if err := oneOf(sb.InvalidResponseAction, InvalidResponseActions); err != nil {
				bad("flow", name, field+".invalid_response_action", err)
			}
			for k, pb := range sb.Policies {
				if err := checkPolicyBinding(pb, modules); err != nil {
					bad("flow", name, fmt.Sprintf("%s.policies[%d]", field, k), err)
				}
			}
		}
		if err := checkDesignationStages(f, cfg); err != nil {
			bad("flow", name, "stages", err)
		}
		fp := &f
		l.flows[f.Slug] = fp
		l.byDesignation[f.Designation] = append(l.byDesignation[f.Designation], fp)
	}
	for _, list := range l.byDesignation {
		sort.Slice(list, func(i, j int) bool {
			if list[i].BuiltIn != list[j].BuiltIn {
				return !list[i].BuiltIn // never let a built-in outrank an operator's flow
			}
			if list[i].Order != list[j].Order {
				return list[i].Order < list[j].Order
			}
			return list[i].Slug < list[j].Slug
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return l, nil
}

func stageType(cfg *Config, name string) string {
	for _, s := range cfg.Stages {
		if s.Name == name {
			return s.Type
		}
	}
	return ""
}

// checkDesignationStages enforces that authentication flows end in user_login and
// invalidation flows contain user_logout.
func checkDesignationStages(f Flow, cfg *Config) error {
	switch f.Designation {
	case DesignationAuthentication:
		if len(f.Stages) == 0 || stageType(cfg, f.Stages[len(f.Stages)-1].Stage) != "user_login" {
			return errors.New("an authentication flow must end in a user_login stage")
		}
	case DesignationInvalidation:
		for _, sb := range f.Stages {
			if stageType(cfg, sb.Stage) == "user_logout" {
				return nil
			}
		}
		return errors.New("an invalidation flow must contain a user_logout stage")
	}
	return nil
}

func checkPolicyBinding(b PolicyBinding, modules map[string]string) error {
	set := 0
	for _, v := range []string{b.Policy, b.Group, b.User} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return errors.New("a policy binding needs exactly one of policy, group, user")
	}
	if b.Policy != "" {
		if _, ok := modules[b.Policy]; !ok {
			return fmt.Errorf("unknown policy %q", b.Policy)
		}
	}
	if b.Timeout < 0 {
		return errors.New("timeout must not be negative")
	}
	return nil
}

// normalizeFlow fills enum defaults and sorts bindings by order (stable, so equal
// orders keep their written order).
func normalizeFlow(f Flow) Flow {
	if f.DeniedAction == "" {
		f.DeniedAction = DeniedMessageContinue
	}
	if f.PolicyEngineMode == "" {
		f.PolicyEngineMode = ModeAny
	}
	if f.Authentication == "" {
		f.Authentication = AuthNone
	}
	f.Policies = sortedBindings(f.Policies)
	stages := append([]StageBinding(nil), f.Stages...)
	for i := range stages {
		if stages[i].PolicyEngineMode == "" {
			stages[i].PolicyEngineMode = ModeAny
		}
		if stages[i].InvalidResponseAction == "" {
			stages[i].InvalidResponseAction = InvalidRetry
		}
		stages[i].Policies = sortedBindings(stages[i].Policies)
	}
	sort.SliceStable(stages, func(i, j int) bool { return stages[i].Order < stages[j].Order })
	f.Stages = stages
	return f
}

func sortedBindings(in []PolicyBinding) []PolicyBinding {
	out := append([]PolicyBinding(nil), in...)
	for i := range out {
		if out[i].Timeout == 0 {
			out[i].Timeout = DefaultPolicyTimeout
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

func validateUsers(seeds []SeedUser) error {
	seen := map[string]bool{}
	for _, s := range seeds {
		u := s.User
		key := NormalizeKey(u.Username)
		if key == "" {
			return &ValidationError{Kind: "user", Name: "(unnamed)", Field: "username", Err: errors.New("is required")}
		}
		if seen[key] {
			return &ValidationError{Kind: "user", Name: u.Username, Err: errors.New("duplicate username")}
		}
		seen[key] = true
	}
	return nil
}

// Authorize evaluates one policy for a logged-in request (a protected route's
// authorization policy). An unknown policy or an error denies.
func (e *Engine) Authorize(ctx context.Context, policy string, req *Request) Decision {
	l := e.loaded.Load()
	b := PolicyBinding{Policy: policy, Enabled: true, Timeout: DefaultPolicyTimeout}
	var sessionCtx map[string]any
	if req.Session != nil {
		// A signed-in user's auth_methods are the session's, as in a flow.
		sessionCtx = map[string]any{CtxAuthMethods: req.Session.AuthMethods}
	}
	in := PolicyInput(req, nil, nil, req.User, req.User != nil, sessionCtx)
	in["context"] = map[string]any{}
	l.addReputation([]PolicyBinding{b}, req, req.User, nil, in)
	return e.evaluate(ctx, l, "", "authorize", []PolicyBinding{b}, ModeAll, req.User, in)
}

// evaluate is evaluateBindings, reported to the observer binding by binding.
func (e *Engine) evaluate(ctx context.Context, l *loaded, flow, scope string, bindings []PolicyBinding, mode EngineMode, user *User, in map[string]any) Decision {
	d := evaluateBindings(ctx, l.policies, scope, bindings, mode, user, in)
	for _, rec := range d.Records {
		result := "fail"
		switch {
		case rec.Error != "":
			result = "error"
		case rec.Outcome:
			result = "pass"
		}
		e.opts.Observer.Observe(Event{Kind: EventPolicy, Flow: flow, Policy: rec.Binding, Result: result, Duration: rec.Duration})
	}
	return d
}

// HasPolicy reports whether a policy of that name is loaded.
func (e *Engine) HasPolicy(name string) bool {
	for _, p := range e.loaded.Load().cfg.Policies {
		if p.Name == name {
			return true
		}
	}
	return false
}
