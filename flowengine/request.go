package flowengine

import (
	"net"
	"net/url"
	"strings"
)

// Request describes the HTTP request that drives a flow step, independent of any
// server framework.
type Request struct {
	Method   string
	Scheme   string
	Host     string
	Path     string
	Query    url.Values
	Header   map[string][]string
	ClientIP string
	// Prefix is the path under which the gateway serves flows ("/.flowgate"),
	// for absolute links to a flow (email stage).
	Prefix string
	// Session and User are the caller's current login, if any.
	Session *Session
	User    *User
	// Reputation gives the scores policies see as input.reputation (the
	// gateway sets its regulator); nil gives zero scores.
	Reputation ReputationSource
}

// UserAgent returns the User-Agent header.
func (r *Request) UserAgent() string {
	for k, v := range r.Header {
		if strings.EqualFold(k, "User-Agent") && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// NextValidator accepts or rejects a redirect target for this request; it returns
// the target to use. The gateway installs one that knows trusted hosts.
type NextValidator func(next string, req *Request) (string, bool)

// RelativeNext accepts only a local path with exactly one leading slash, no
// backslashes and no control characters, also after percent-decoding. It is the
// default validator and the path half of the gateway's.
func RelativeNext(next string, _ *Request) (string, bool) {
	if !isSafePath(next) {
		return "", false
	}
	return next, true
}

func isSafePath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	if hasBadChar(p) {
		return false
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return false
	}
	// An encoded second slash or backslash would be decoded by some upstream into
	// a protocol-relative URL.
	if strings.HasPrefix(dec, "//") || strings.Contains(dec, `\`) || hasBadChar(dec) {
		return false
	}
	return true
}

func hasBadChar(s string) bool {
	for _, r := range s {
		if r == '\\' || r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// TrustedNext returns the gateway's validator: a local path (RelativeNext), or an
// absolute http(s) URL without userinfo whose authority is the request's own —
// same host and same port, 80/443 implied by the scheme, since another port of
// the same host can be another service — or whose host matches a trusted entry:
// exact, or "*.example.com" for any name ending in ".example.com"; an entry
// without a port trusts the host on any port, "app.example.com:8443" only that
// port. Everything else is refused, which closes open redirects.
func TrustedNext(trusted []string) NextValidator {
	hosts := make([]trustedHost, len(trusted))
	for i, h := range trusted {
		hosts[i] = parseTrustedHost(h)
	}
	return func(next string, req *Request) (string, bool) {
		if strings.HasPrefix(next, "/") {
			return RelativeNext(next, req)
		}
		if len(next) > 4096 || hasBadChar(next) {
			return "", false
		}
		u, err := url.Parse(next)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" || u.Opaque != "" {
			return "", false
		}
		host, port := strings.ToLower(u.Hostname()), portOr(u.Port(), strings.ToLower(u.Scheme))
		if req != nil {
			reqHost, reqPort := splitHostPort(req.Host)
			if host == strings.ToLower(reqHost) && port == portOr(reqPort, req.Scheme) {
				return u.String(), true
			}
		}
		if hostTrusted(host, port, hosts) {
			return u.String(), true
		}
		return "", false
	}
}

// trustedHost is one trusted_redirect_hosts entry; port "" trusts any port.
type trustedHost struct{ host, port string }

func parseTrustedHost(h string) trustedHost {
	h = strings.ToLower(h)
	if host, port, err := net.SplitHostPort(h); err == nil {
		return trustedHost{host, port}
	}
	return trustedHost{strings.Trim(h, "[]"), ""}
}

// portOr is port, or the scheme's default port when it is empty.
func portOr(port, scheme string) string {
	if port != "" {
		return port
	}
	if scheme == "http" {
		return "80"
	}
	return "443"
}

func splitHostPort(hostport string) (string, string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.Trim(hostport, "[]"), ""
}

// hostTrusted matches on a dot boundary, so "*.example.com" does not admit
// "evilexample.com", and on the entry's port when it names one.
func hostTrusted(host, port string, trusted []trustedHost) bool {
	for _, t := range trusted {
		if t.port != "" && t.port != port {
			continue
		}
		if suffix, ok := strings.CutPrefix(t.host, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
			continue
		}
		if host == t.host {
			return true
		}
	}
	return false
}
