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
	// Session and User are the caller's current login, if any.
	Session *Session
	User    *User
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
// absolute http(s) URL without userinfo whose host is the request's own or matches
// a trusted host (exact, or "*.example.com" for any name ending in
// ".example.com"). Everything else is refused, which closes open redirects.
func TrustedNext(trusted []string) NextValidator {
	hosts := make([]string, len(trusted))
	for i, h := range trusted {
		hosts[i] = strings.ToLower(h)
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
		host := strings.ToLower(u.Hostname())
		if req != nil && host == strings.ToLower(stripPort(req.Host)) {
			return u.String(), true
		}
		if hostTrusted(host, hosts) {
			return u.String(), true
		}
		return "", false
	}
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// hostTrusted matches on a dot boundary, so "*.example.com" does not admit
// "evilexample.com".
func hostTrusted(host string, trusted []string) bool {
	for _, t := range trusted {
		if suffix, ok := strings.CutPrefix(t, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
			continue
		}
		if host == t {
			return true
		}
	}
	return false
}
