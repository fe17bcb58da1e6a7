package caddymodule

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/templates"
)

// contentSecurityPolicy allows the gateway's own stylesheet and script (the
// show-password control, served from the binary) and nothing inline.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// widgetCSP is the CSP of a page that loads a third-party widget from origin
// (a siteverify captcha: its script, the iframes it draws, the calls it makes):
// the flow pages' policy with that one origin added, nothing wider.
func widgetCSP(origin string) string {
	return "default-src 'none'; script-src 'self' " + origin + "; frame-src " + origin + "; connect-src " + origin +
		"; style-src 'self'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// widgetOrigin is the origin of an http(s) URL, or "" if it has none that can
// go into a CSP as is (no wildcard, no separator, no path).
func widgetOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return ""
		}
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// pageHeaders are sent with every flow page: no inline script, no framing, no
// caching, no referrer leaking flow URLs to other sites.
func pageHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
}

// serveFlowgate routes the endpoints under the prefix.
func (h *Handler) serveFlowgate(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, h.Prefix)
	if strings.HasPrefix(rest, "/static/") {
		return h.serveStatic(w, r, strings.TrimPrefix(rest, "/static/"))
	}
	pageHeaders(w)
	switch {
	case rest == "/logout" || rest == "/logout/":
		target := h.Prefix + "/default/invalidation/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusFound)
		return nil
	case rest == "/account" || rest == "/account/":
		return h.account(w, r)
	case rest == "/signed-out" || rest == "/signed-out/":
		return h.signedOut(w, r)
	case rest == "/auth/verify":
		return h.verify(w, r)
	case strings.HasPrefix(rest, "/default/"):
		return h.byDesignation(w, r, strings.Trim(strings.TrimPrefix(rest, "/default/"), "/"))
	case strings.HasPrefix(rest, "/flows/"):
		return h.flowEndpoint(w, r, strings.Trim(strings.TrimPrefix(rest, "/flows/"), "/"), h.serveFlowHTML)
	case strings.HasPrefix(rest, "/api/v1/flows/"):
		return h.flowEndpoint(w, r, strings.Trim(strings.TrimPrefix(rest, "/api/v1/flows/"), "/"), h.serveFlowAPI)
	}
	if strings.HasPrefix(rest, "/api/") {
		return writeJSON(w, http.StatusNotFound, apiError("no such endpoint"))
	}
	return h.renderStatus(w, r, http.StatusNotFound, "notfound", "")
}

func apiError(msg string) map[string]string {
	return map[string]string{"type": "error", "message": msg}
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request, name string) error {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if name == "custom.css" && h.app.customCSS != nil {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, err := w.Write(h.app.customCSS)
		return err
	}
	if strings.Contains(name, "..") || name == "" {
		http.NotFound(w, r)
		return nil
	}
	http.ServeFileFS(w, r, templates.Static(), name)
	return nil
}

// byDesignation sends the browser to the site's flow of that designation: the
// pinned one, else the first whose policies pass.
func (h *Handler) byDesignation(w http.ResponseWriter, r *http.Request, d string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.methodNotAllowed(w, r)
	}
	if !validDesignation(d) {
		return h.renderStatus(w, r, http.StatusNotFound, "notfound", "There is no such flow.")
	}
	slug := h.Flows[d]
	if slug == "" {
		sess, user, err := h.session(r.Context(), r)
		if err != nil {
			h.logger.Error("session lookup failed", zap.Error(err))
			return h.unavailable(w, r)
		}
		f, err := h.app.engine.FindFlow(r.Context(), flowengine.Designation(d), h.flowRequest(r, sess, user))
		if errors.Is(err, flowengine.ErrNoFlow) {
			return h.renderStatus(w, r, http.StatusNotFound, "notfound", "No "+strings.ReplaceAll(d, "_", " ")+" flow is available here.")
		}
		if err != nil {
			return h.flowError(w, r, err, true)
		}
		slug = f.Slug
	}
	target := h.flowURL(slug)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

func (h *Handler) flowURL(slug string) string {
	return h.Prefix + "/flows/" + url.PathEscape(slug) + "/"
}

// verify is the forward-auth endpoint for other proxies (Caddy's
// forward_auth, Traefik's forwardAuth, nginx's auth_request). A trusted proxy
// describes the request it asks about in X-Forwarded-* headers (see
// originalRequest): the site policy judges that request, and the login URL
// sends the visitor back to it. Without a session, a browser navigation gets a
// 302 to the login URL (which the proxy hands on), anything else a 401 with
// the login URL in JSON and in Location (always a 401 with ?mode=auth_request).
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) error {
	orig, uriForwarded := h.originalRequest(r)
	sess, user, err := h.session(r.Context(), r)
	if err == nil && user == nil && orig.TLS != nil && r.TLS == nil {
		// The visitor's request was https but reached us over plain http: their
		// browser may hold the __Host- session cookie an https flow page set
		// (only that host, over https, can set one, so it is safe to accept).
		sess, user, err = h.session(r.Context(), orig)
	}
	if err != nil {
		h.logger.Error("session lookup failed", zap.Error(err))
		return h.unavailable(w, r)
	}
	if user == nil {
		login := h.verifyLoginURL(r, orig, uriForwarded)
		// nginx's auth_request takes only 2xx, 401 and 403 from the auth
		// endpoint: ?mode=auth_request answers 401 with the login URL in
		// Location, for `error_page 401 =302 $login_url`.
		authRequest := r.URL.Query().Get("mode") == "auth_request"
		w.Header().Set("Location", login)
		if isNavigation(orig) && !authRequest {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, login, http.StatusFound)
			return nil
		}
		w.Header().Set("WWW-Authenticate", `FlowGate realm="`+orig.Host+`"`)
		return writeJSON(w, http.StatusUnauthorized, map[string]string{"type": "error", "message": "authentication required", "login_url": login})
	}
	// The same authorization as the site itself: verify must not be a way
	// around the site's policy (nor, through session, its pinned flow).
	if done, err := h.verifyAuthorize(w, r, orig, sess, user, uriForwarded); done {
		return err
	}
	id := h.identityOf(user)
	for i, key := range h.headerKeys {
		if key != "" {
			w.Header()[key] = id.headers[i]
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// originalRequest is the request a proxy asks auth/verify about, described by
// X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri
// (what Caddy's forward_auth, Traefik and nginx send). They are honoured only
// when the peer is one of the server's trusted_proxies — Caddy's own decision,
// the one that also lets X-Forwarded-For set the client IP: from anyone else
// they would let a client have a request judged as another (a path the site
// policy allows) or steer the login link to another host, so they are ignored
// and r stands for itself. Each header is checked on its own, and one that is
// malformed is ignored. The result is a shallow copy of r with the method,
// host, URL and TLS state (which tells flowgate the scheme) of the original,
// or r itself when nothing is forwarded; uri says X-Forwarded-Uri was used.
func (h *Handler) originalRequest(r *http.Request) (orig *http.Request, uri bool) {
	hd := r.Header
	if hd.Get("X-Forwarded-Method") == "" && hd.Get("X-Forwarded-Proto") == "" &&
		hd.Get("X-Forwarded-Host") == "" && hd.Get("X-Forwarded-Uri") == "" {
		return r, false
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		if ce := h.logger.Check(zapcore.DebugLevel, "auth/verify: ignoring X-Forwarded-* from a peer outside trusted_proxies"); ce != nil {
			ce.Write(zap.String("remote_addr", r.RemoteAddr))
		}
		return r, false
	}
	o := r.WithContext(r.Context())
	u := *r.URL
	o.URL = &u
	if m := firstValue(hd.Get("X-Forwarded-Method")); m != "" && validMethod(m) {
		o.Method = m
	}
	switch strings.ToLower(firstValue(hd.Get("X-Forwarded-Proto"))) {
	case "https":
		if o.TLS == nil {
			o.TLS = &tls.ConnectionState{} // flowgate reads the scheme from TLS != nil
		}
	case "http":
		o.TLS = nil
	}
	if host := firstValue(hd.Get("X-Forwarded-Host")); host != "" && validHost(host) {
		o.Host = host
	}
	if raw := hd.Get("X-Forwarded-Uri"); strings.HasPrefix(raw, "/") {
		if pu, err := url.ParseRequestURI(raw); err == nil {
			o.URL.Path, o.URL.RawPath, o.URL.RawQuery = pu.Path, pu.RawPath, pu.RawQuery
			uri = true
		}
	}
	return o, uri
}

// verifyLoginURL is auth/verify's login URL: with next= back to the original
// request's path and query when a trusted proxy forwarded it (never to
// auth/verify itself), and absolute on the original host when that is not the
// host auth/verify was asked on (the login pages are served there, under the
// prefix, by flowgate in front of that site or routed to it).
func (h *Handler) verifyLoginURL(r, orig *http.Request, withNext bool) string {
	login := h.Prefix + "/default/authentication/"
	if withNext {
		login = h.loginURL(orig)
	}
	if strings.EqualFold(orig.Host, r.Host) {
		return login
	}
	scheme := "http"
	if orig.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + orig.Host + login
}

// firstValue is the first of a comma-separated header value (a proxy chain may
// append its own), trimmed.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// validMethod: an HTTP method is a token.
func validMethod(m string) bool {
	return len(m) <= 32 && httpguts.ValidHeaderFieldName(m)
}

// validHost accepts a host name or IP literal with an optional port, and
// nothing that could end the authority of a URL built from it.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range []byte(h) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Allow", "GET, HEAD, POST")
	if strings.Contains(r.URL.Path, "/api/") {
		return writeJSON(w, http.StatusMethodNotAllowed, apiError("method not allowed"))
	}
	return h.renderStatus(w, r, http.StatusMethodNotAllowed, "error", "That method is not allowed here.")
}

// sameOrigin refuses cross-site POSTs: Sec-Fetch-Site cross-site, or an Origin
// that is present, not "null", and not this site. Origin "null" alone is allowed:
// Chromium sends it for same-site posts from no-referrer pages.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// applyResult sets the cookies a flow step asks for and logs what deserves it.
func (h *Handler) applyResult(w http.ResponseWriter, r *http.Request, slug string, res *flowengine.Result) error {
	if res.RejectedNext != "" {
		h.logger.Info("ignored unsafe next target", zap.String("flow", slug), zap.String("next", res.RejectedNext))
	}
	for _, rec := range res.Records {
		if rec.Error != "" {
			h.logger.Warn("policy evaluation failed", zap.String("flow", slug), zap.String("scope", rec.Scope),
				zap.String("binding", rec.Binding), zap.String("error", rec.Error), zap.Bool("outcome", rec.Outcome))
		} else if ce := h.logger.Check(zapcore.DebugLevel, "policy evaluated"); ce != nil {
			// Why a stage ran or was skipped, for an operator debugging a flow.
			ce.Write(zap.String("flow", slug), zap.String("scope", rec.Scope), zap.String("binding", rec.Binding),
				zap.Bool("outcome", rec.Outcome), zap.Strings("messages", rec.Messages), zap.Duration("took", rec.Duration))
		}
	}
	h.app.setFlowExecution(w, r, h.Prefix, slug, res.ExecutionID)
	if res.NewSession != nil {
		if err := h.app.setSessionCookie(w, r, res.NewSession); err != nil {
			return err
		}
		h.logger.Info("login", zap.String("flow", slug), zap.String("user_id", res.NewSession.UserID),
			zap.String("client_ip", res.NewSession.ClientIP))
	}
	if res.EndSession {
		h.app.clearSessionCookie(w, r)
	}
	return nil
}

// flowError answers a failed flow step: bad input is a 4xx, a store failure a 503.
func (h *Handler) flowError(w http.ResponseWriter, r *http.Request, err error, html bool) error {
	status, page, msg := http.StatusServiceUnavailable, "unavailable", "The sign-in service is unavailable right now."
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		status, page, msg = http.StatusNotFound, "notfound", "There is no such flow."
	case errors.Is(err, flowengine.ErrExpired):
		status, page, msg = http.StatusGone, "expired", "This flow has expired or was already finished. Please start again."
	case errors.Is(err, flowengine.ErrInvalidAnswer):
		status, page, msg = http.StatusBadRequest, "error", "The form did not match this step: "+err.Error()
	case errors.Is(err, flowengine.ErrBusy):
		status, page, msg = http.StatusConflict, "error", "This step is already being processed. Wait a moment and reload the page."
	case errors.Is(err, flowengine.ErrOverloaded):
		// Too many passwords are being checked at once: this attempt was not
		// heard (nothing was counted or changed) and may be sent again as is.
		w.Header().Set("Retry-After", "1")
		msg = "The sign-in service is busy. Try again in a moment."
		if !html {
			return writeJSON(w, http.StatusTooManyRequests, apiError(msg))
		}
		// Back to the same step: the flow is still where it was.
		return h.renderStatus(w, r, http.StatusTooManyRequests, "error", msg, templates.Link{URL: r.URL.Path, Label: "Try again"})
	case errors.Is(err, flowengine.ErrPolicyFailed):
		h.logger.Warn("flow selection stopped by a failing policy", zap.Error(err))
		msg = flowengine.UnavailableMessage
	default:
		h.logger.Error("flow step failed", zap.Error(err))
	}
	if !html {
		return writeJSON(w, status, apiError(msg))
	}
	return h.renderStatus(w, r, status, page, msg)
}
