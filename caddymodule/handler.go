package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/flowgate/flowgate/flowengine"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler protects a site: requests without a session go through the
// authentication flow; requests with one reach the next handler with identity
// headers. It also serves the flow pages and API under its prefix.
type Handler struct {
	// Prefix under which flow pages, the JSON API and assets are served
	// (default /.flowgate).
	Prefix string `json:"prefix,omitempty"`
	// Policy names a Rego policy that must allow a logged-in request
	// (authorization); a denial is a 403 page. Default: none.
	Policy string `json:"policy,omitempty"`
	// Headers renames the identity headers set for the upstream
	// (defaults Remote-User, Remote-Email, Remote-Name, Remote-Groups); "-"
	// sends no such header. Client-sent identity headers are removed either way.
	Headers *HeaderNames `json:"headers,omitempty"`
	// Flows pins a flow slug per designation (e.g. authentication: my-login)
	// instead of choosing by order and policies.
	Flows map[string]string `json:"flows,omitempty"`
	// AcceptFlows lists more authentication flows whose sessions this site
	// accepts when its authentication flow is pinned. A pinned site accepts only
	// sessions created by its own flow and these (default: none besides it);
	// any other session is sent through the pinned flow.
	AcceptFlows []string `json:"accept_flows,omitempty"`
	// StepUp names a flow (its slug) that adds a second factor to a session,
	// such as the shipped step-up-mfa. When a signed-in user fails the
	// authorization policy but would pass it with a second factor (the policy
	// evaluated again as if the session also had every MFA method: otp,
	// static, webauthn), a browser is sent through this flow and back, and an
	// API client gets a 401 naming it, instead of the 403. Needs Policy; the
	// flow must exist (checked at load) and should end in user_login, which
	// adds the new method to the session. Default: none (a denial is always
	// a 403).
	StepUp string `json:"step_up,omitempty"`

	app    *App
	logger *zap.Logger
	strip  []string // identity header names, folded by headerKey
	// headerKeys are the canonical names of the user, email, name and groups headers.
	headerKeys [4]string
	identities *identityCache
	accepted   map[string]bool // flows whose sessions count here; nil: any
	// cookiePrefixes are "name=" of the session and flow cookies, without and
	// with the __Host- prefix, so the proxied path builds no strings.
	cookiePrefixes [2][2]string
}

// HeaderNames are the identity headers sent upstream; NoHeader sends none.
type HeaderNames struct {
	User   string `json:"user,omitempty"`
	Email  string `json:"email,omitempty"`
	Name   string `json:"name,omitempty"`
	Groups string `json:"groups,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.flowgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

const maxFlowBody = 64 << 10

// Provision fetches the flowgate app (configuring it with defaults if the global
// options do not mention it) and fills defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("flowgate")
	if err != nil {
		return fmt.Errorf("loading flowgate app: %w", err)
	}
	h.app = appIface.(*App)
	if h.Prefix == "" {
		h.Prefix = "/.flowgate"
	}
	h.Prefix = "/" + strings.Trim(h.Prefix, "/")
	if h.Headers == nil {
		h.Headers = &HeaderNames{}
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&h.Headers.User, "Remote-User")
	def(&h.Headers.Email, "Remote-Email")
	def(&h.Headers.Name, "Remote-Name")
	def(&h.Headers.Groups, "Remote-Groups")
	h.identities = &identityCache{}
	for i, p := range []string{"", "__Host-"} {
		h.cookiePrefixes[i] = [2]string{p + h.app.Cookie.Name + "=", p + flowCookieName + "="}
	}
	if pinned := h.Flows[string(flowengine.DesignationAuthentication)]; pinned != "" {
		h.accepted = map[string]bool{pinned: true}
		for _, f := range h.AcceptFlows {
			h.accepted[f] = true
		}
	}
	for i, n := range []string{h.Headers.User, h.Headers.Email, h.Headers.Name, h.Headers.Groups} {
		h.headerKeys[i] = ""
		if n != NoHeader {
			h.headerKeys[i] = textproto.CanonicalMIMEHeaderKey(n)
		}
	}
	h.strip = nil
	for _, n := range []string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups",
		h.Headers.User, h.Headers.Email, h.Headers.Name, h.Headers.Groups} {
		if k := headerKey(n); n != NoHeader && !slices.Contains(h.strip, k) {
			h.strip = append(h.strip, k)
		}
	}
	return nil
}

// NoHeader as an identity header name sends no such header upstream.
const NoHeader = "-"

func checkHeaderName(n string) error {
	if n != NoHeader && !httpguts.ValidHeaderFieldName(n) {
		return fmt.Errorf("identity header %q: not a valid header name (%q sends none)", n, NoHeader)
	}
	return nil
}

// Validate checks the header names, and pinned flows and the authorization
// policy against the loaded configuration.
func (h *Handler) Validate() error {
	for _, n := range []string{h.Headers.User, h.Headers.Email, h.Headers.Name, h.Headers.Groups} {
		if err := checkHeaderName(n); err != nil {
			return err
		}
	}
	if h.StepUp != "" && h.Policy == "" {
		return fmt.Errorf("step_up %s: needs a policy (a step-up answers the policy's denials)", h.StepUp)
	}
	if !h.app.ready.Load() {
		// The store is unreachable; flows load when it comes back.
		return nil
	}
	for d, slug := range h.Flows {
		if !validDesignation(d) {
			return fmt.Errorf("flow %s: unknown designation", d)
		}
		f, err := h.app.engine.Flow(slug)
		if err != nil {
			return fmt.Errorf("flow %s %s: no flow with that slug", d, slug)
		}
		if string(f.Designation) != d {
			return fmt.Errorf("flow %s %s: that flow's designation is %s", d, slug, f.Designation)
		}
	}
	if len(h.AcceptFlows) > 0 && h.accepted == nil {
		return fmt.Errorf("accept_flows needs a pinned authentication flow (flow authentication <slug>)")
	}
	for _, slug := range h.AcceptFlows {
		f, err := h.app.engine.Flow(slug)
		if err != nil {
			return fmt.Errorf("accept_flows %s: no flow with that slug", slug)
		}
		if f.Designation != flowengine.DesignationAuthentication {
			return fmt.Errorf("accept_flows %s: that flow's designation is %s", slug, f.Designation)
		}
	}
	if h.Policy != "" && !h.app.engine.HasPolicy(h.Policy) {
		return fmt.Errorf("policy %s: no policy with that name", h.Policy)
	}
	if h.StepUp != "" {
		// A step-up that names no flow would send users to a 404; refuse the
		// config instead. (Deleted later through the admin API, it is a 503.)
		if _, err := h.app.engine.Flow(h.StepUp); err != nil {
			return fmt.Errorf("step_up %s: no flow with that slug", h.StepUp)
		}
	}
	return nil
}

func validDesignation(d string) bool {
	for _, x := range flowengine.Designations {
		if string(x) == d {
			return true
		}
	}
	return false
}

// headerKey folds a header name so that Remote-User, remote_user and REMOTE-USER
// are one: proxies may map underscores to hyphens, so both are stripped.
func headerKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.app.ready.Load() {
		return h.unavailable(w, r) // fail closed until the store is reachable
	}
	if r.URL.Path == h.Prefix || strings.HasPrefix(r.URL.Path, h.Prefix+"/") {
		return h.serveFlowgate(w, r)
	}
	return h.protect(w, r, next)
}

// session resolves the request's session and user, shared read-only values from
// the store cache. No cookie, a forged cookie, an unknown or expired session, an
// inactive user or a session from a flow this site does not accept is (nil, nil,
// nil); a store failure is an error, and callers fail closed.
func (h *Handler) session(ctx context.Context, r *http.Request) (*flowengine.Session, *flowengine.User, error) {
	sess, user, err := h.anySession(ctx, r)
	if sess != nil && h.accepted != nil && !h.accepted[sess.Flow] {
		// A site that pins its authentication flow (say, with a deny stage or
		// a stricter policy) must not honour a session another flow created.
		return nil, nil, nil
	}
	return sess, user, err
}

// anySession is session without the pinned-flow rule: signing out ends the
// browser's session whichever flow made it.
func (h *Handler) anySession(ctx context.Context, r *http.Request) (*flowengine.Session, *flowengine.User, error) {
	id, ok := h.app.sessionID(r)
	if !ok {
		return nil, nil, nil
	}
	sess, user, err := h.app.store.SessionUser(ctx, id)
	if errors.Is(err, flowengine.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !user.IsActive {
		return nil, nil, nil
	}
	return sess, user, nil
}

// refreshInterval bounds sliding-session writes to one a minute per session.
const refreshInterval = time.Minute

// refresh slides the session's expiry forward, keeping its idle window.
func (h *Handler) refresh(ctx context.Context, s *flowengine.Session) {
	now := time.Now()
	if now.Sub(s.LastSeen) < refreshInterval {
		return
	}
	window := s.ExpiresAt.Sub(s.LastSeen)
	if err := h.app.store.TouchSession(ctx, s.ID, now, now.Add(window)); err != nil && !errors.Is(err, flowengine.ErrNotFound) {
		if ce := h.logger.Check(zapcore.WarnLevel, "refreshing session"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}

// flowRequest describes r for the engine.
func (h *Handler) flowRequest(r *http.Request, s *flowengine.Session, u *flowengine.User) *flowengine.Request {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	return &flowengine.Request{
		Method: r.Method, Scheme: scheme, Host: r.Host, Path: r.URL.Path, Query: r.URL.Query(),
		Header: r.Header, ClientIP: ip, Prefix: h.Prefix, Session: s, User: u,
		// input.reputation comes from the brute-force counters.
		Reputation: h.app.regulator,
	}
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
