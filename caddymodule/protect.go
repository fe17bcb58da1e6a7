package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flowgate/flowgate/flowengine"
)

// protect lets a request with a valid session through with identity headers, and
// sends every other request to sign in. Any failure denies.
func (h *Handler) protect(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ctx := r.Context()
	sess, user, err := h.session(ctx, r)
	if err != nil {
		metrics.unavailable.Inc()
		h.logger.Error("session lookup failed; refusing request", zap.Error(err))
		return h.unavailable(w, r)
	}
	if user == nil {
		metrics.login.Inc()
		return h.requireLogin(w, r)
	}
	switch v, msg := h.authorize(r, sess, user); v {
	case authzStepUp:
		metrics.login.Inc()
		return h.requireStepUp(w, r, h.stepUpURL(r.URL.RequestURI()))
	case authzUnavailable:
		metrics.unavailable.Inc()
		return h.unavailable(w, r)
	case authzDenied:
		metrics.deny.Inc()
		return h.forbidden(w, r, msg)
	}
	metrics.allow.Inc()
	h.setIdentity(r, user)
	h.dropSessionCookie(r)
	h.refresh(ctx, sess)
	return next.ServeHTTP(w, r)
}

// authzVerdict is what the site's authorization policy made of a signed-in
// request.
type authzVerdict int

const (
	authzAllowed authzVerdict = iota
	authzDenied
	// authzStepUp: denied, but a second factor would pass (step_up is set).
	authzStepUp
	// authzUnavailable: a second factor would pass, but the step_up flow is
	// gone (deleted since the config loaded): refuse, and tell the operator.
	authzUnavailable
)

// mfaMethods are the auth methods a step-up flow can add to a session.
var mfaMethods = []string{flowengine.MethodOTP, flowengine.MethodStatic, flowengine.MethodWebAuthn}

// authorize applies the site's authorization policy to a signed-in request; on
// a denial it returns the message to show. An erroring policy denies (and
// never offers a step-up: nothing is known about what would pass).
func (h *Handler) authorize(r *http.Request, sess *flowengine.Session, user *flowengine.User) (authzVerdict, string) {
	if h.Policy == "" {
		return authzAllowed, ""
	}
	fr := h.flowRequest(r, sess, user)
	d := h.app.engine.Authorize(r.Context(), h.Policy, fr)
	if d.Passed {
		return authzAllowed, ""
	}
	if !d.Failed && h.StepUp != "" && h.passesWithFactor(r, fr) {
		if _, err := h.app.engine.Flow(h.StepUp); err != nil {
			h.logger.Error("step_up flow is missing; refusing a request that needs a second factor",
				zap.String("step_up", h.StepUp), zap.String("path", r.URL.Path))
			return authzUnavailable, ""
		}
		if ce := h.logger.Check(zapcore.InfoLevel, "second factor required; stepping up"); ce != nil {
			ce.Write(zap.String("user", user.Username), zap.String("policy", h.Policy), zap.String("path", r.URL.Path), zap.String("step_up", h.StepUp))
		}
		return authzStepUp, ""
	}
	h.app.audit(auditAuthorizationDenied, zap.String("user", user.Username), zap.String("client_ip", fr.ClientIP),
		zap.String("policy", h.Policy), zap.String("path", r.URL.Path), zap.Bool("policy_failed", d.Failed))
	if d.Failed {
		h.logger.Warn("authorization policy failed; denying", zap.String("policy", h.Policy), zap.String("path", r.URL.Path))
		return authzDenied, "Access cannot be checked right now."
	}
	if ce := h.logger.Check(zapcore.InfoLevel, "authorization denied"); ce != nil {
		ce.Write(zap.String("user", user.Username), zap.String("policy", h.Policy), zap.String("path", r.URL.Path))
	}
	msg := strings.Join(d.Messages, " ")
	if msg == "" {
		msg = "You do not have access to this page."
	}
	return authzDenied, msg
}

// passesWithFactor evaluates the policy again as if the session also had
// every MFA method it lacks: if that passes, only a second factor is missing.
// A session that already has them all gains nothing from a step-up (and must
// not be sent round again), nor does a denial for any other reason.
func (h *Handler) passesWithFactor(r *http.Request, fr *flowengine.Request) bool {
	if fr.Session == nil {
		return false
	}
	methods := slices.Clone(fr.Session.AuthMethods)
	for _, m := range mfaMethods {
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	if len(methods) == len(fr.Session.AuthMethods) {
		return false
	}
	sess := *fr.Session // the store cache's shared value: change a copy
	sess.AuthMethods = methods
	what := *fr
	what.Session = &sess
	return h.app.engine.Authorize(r.Context(), h.Policy, &what).Passed
}

// stepUpURL is the step-up flow's page, coming back to next (a path and query
// of this site; "" for the flow's default target).
func (h *Handler) stepUpURL(next string) string {
	u := h.flowURL(h.StepUp)
	if next != "" {
		u += "?next=" + url.QueryEscape(next)
	}
	return u
}

// requireStepUp sends a browser through the step-up flow and back; an API
// client gets a 401 naming that flow's page (in JSON and in Location), as
// for a missing session.
func (h *Handler) requireStepUp(w http.ResponseWriter, r *http.Request, to string) error {
	if isNavigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, to, http.StatusFound)
		return nil
	}
	return stepUpRequired(w, r.Host, to)
}

// stepUpRequired is the 401 that tells an API client (or a forward-auth
// proxy) to go through the step-up flow at to.
func stepUpRequired(w http.ResponseWriter, host, to string) error {
	w.Header().Set("Location", to)
	w.Header().Set("WWW-Authenticate", `FlowGate realm="`+host+`"`)
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"type": "step_up", "message": "a second factor is required", "to": to,
	})
}

// verifyAuthorize is the site policy on auth/verify; done says it answered.
// A missing second factor is the step-up flow's URL in Location (absolute on
// the original host, as verify's login URL is), with a 302 for a browser
// navigation and a 401 otherwise, as for a missing session.
func (h *Handler) verifyAuthorize(w http.ResponseWriter, r, orig *http.Request, sess *flowengine.Session, user *flowengine.User, uriForwarded bool) (bool, error) {
	v, msg := h.authorize(orig, sess, user)
	switch v {
	case authzAllowed:
		return false, nil
	case authzUnavailable:
		return true, h.unavailable(w, r)
	case authzStepUp:
		next := ""
		if uriForwarded {
			next = orig.URL.RequestURI() // never auth/verify itself
		}
		to := h.stepUpURL(next)
		if !strings.EqualFold(orig.Host, r.Host) {
			scheme := "http"
			if orig.TLS != nil {
				scheme = "https"
			}
			to = scheme + "://" + orig.Host + to
		}
		if isNavigation(orig) && r.URL.Query().Get("mode") != "auth_request" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, to, http.StatusFound)
			return true, nil
		}
		return true, stepUpRequired(w, orig.Host, to)
	}
	return true, writeJSON(w, http.StatusForbidden, map[string]string{"type": "denied", "message": msg})
}

// dropSessionCookie removes flowgate's session and flow cookies from the
// request before it goes upstream: they are the gateway's bearer credentials,
// and no upstream needs them (nor should log them). Other cookies pass unchanged.
func (h *Handler) dropSessionCookie(r *http.Request) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	names := h.cookiePrefixes[0]
	if h.app.hostPrefix(r) != "" {
		names = h.cookiePrefixes[1]
	}
	ours := func(p string) bool { return strings.HasPrefix(p, names[0]) || strings.HasPrefix(p, names[1]) }
	var kept []string
	changed := false
	for _, line := range lines {
		if !strings.Contains(line, names[0]) && !strings.Contains(line, names[1]) {
			kept = append(kept, line)
			continue
		}
		changed = true
		var parts []string
		for _, part := range strings.Split(line, ";") {
			if p := strings.TrimSpace(part); p != "" && !ours(p) {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = kept
}

// setIdentity removes every client-sent identity header (in any spelling, so a
// client cannot impersonate) and sets the real ones and the placeholders.
func (h *Handler) setIdentity(r *http.Request, u *flowengine.User) {
	for k := range r.Header {
		if h.isIdentityHeader(k) {
			delete(r.Header, k)
		}
	}
	h.dropTrailers(r)
	id := h.identityOf(u)
	for i, key := range h.headerKeys {
		if key != "" {
			r.Header[key] = id.headers[i]
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id.values[0])
		repl.Set("http.auth.user.email", id.values[1])
		repl.Set("http.auth.user.name", id.values[2])
		repl.Set("http.auth.user.groups", id.values[3])
	}
}

// dropTrailers removes the request's trailers before it goes upstream: a
// chunked body may end with "Remote-User: admin", which the proxy would forward
// after the headers were checked. No upstream of an auth gateway needs request
// trailers, so none are declared or forwarded (the proxy copies the request,
// and trailers the client sends anyway land in this request, not the copy).
func (h *Handler) dropTrailers(r *http.Request) {
	if r.Trailer == nil && r.Header["Trailer"] == nil {
		return
	}
	r.Trailer = nil
	delete(r.Header, "Trailer")
}

// identity is a user's header values and placeholders, built once per cached
// user rather than per request. The header value slices are shared by requests;
// net/http and reverse_proxy replace or copy header values, never change them.
type identity struct {
	headers [4][]string
	values  [4]any // boxed once for the replacer
}

// identityOf returns u's identity; u is the store cache's shared, unchanging
// value, so its address is a fine key until the cache refetches it.
func (h *Handler) identityOf(u *flowengine.User) *identity {
	c := h.identities
	if v, ok := c.m.Load(u); ok {
		return v.(*identity)
	}
	vals := [4]string{u.Username, u.Email, u.Name, strings.Join(u.Groups, ",")}
	id := &identity{}
	for i, v := range vals {
		id.headers[i] = []string{v}
		id.values[i] = v
	}
	if c.n.Add(1) > maxIdentities {
		c.m.Clear()
		c.n.Store(0)
	}
	c.m.Store(u, id)
	return id
}

// identityCache holds identities by user; dropped whole when full, since cached
// users are replaced at least every cache TTL.
type identityCache struct {
	m sync.Map // *flowengine.User → *identity
	n atomic.Int64
}

const maxIdentities = 10_000

// isNavigation tells a browser loading a page from an API or script call.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (h *Handler) loginURL(r *http.Request) string {
	return h.Prefix + "/default/authentication/?next=" + url.QueryEscape(r.URL.RequestURI())
}

func (h *Handler) requireLogin(w http.ResponseWriter, r *http.Request) error {
	login := h.loginURL(r)
	if isNavigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, login, http.StatusFound)
		return nil
	}
	w.Header().Set("WWW-Authenticate", `FlowGate realm="`+r.Host+`"`)
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"type": "error", "message": "authentication required", "login_url": login,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Retry-After", "5")
	if !wantsHTML(r) {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"type": "error", "message": "authentication service unavailable"})
	}
	return h.renderStatus(w, r, http.StatusServiceUnavailable, "unavailable", "")
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, msg string) error {
	if !wantsHTML(r) {
		return writeJSON(w, http.StatusForbidden, map[string]string{"type": "denied", "message": msg})
	}
	return h.forbiddenPage(w, r, msg)
}

func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// isIdentityHeader reports whether k is one of the identity headers in any case
// and with '_' for '-' (proxies may map one to the other). It runs for every
// request header, so it does not allocate.
func (h *Handler) isIdentityHeader(k string) bool {
	for _, name := range h.strip {
		if len(name) != len(k) {
			continue
		}
		same := true
		for i := 0; i < len(k) && same; i++ {
			a, b := k[i], name[i]
			if a == '_' {
				a = '-'
			}
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			same = a == b
		}
		if same {
			return true
		}
	}
	return false
}
