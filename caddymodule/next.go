package caddymodule

import (
	"net"
	"net/url"
	"strings"

	"github.com/flowgate/flowgate/flowengine"
)

// validateNext is the one validator for every redirect flowgate makes: a local
// path (flowengine.RelativeNext), or an absolute http(s) URL without userinfo
// whose host is this site or a trusted redirect host. Anything else is refused,
// which closes open redirects through ?next=.
func (a *App) validateNext(next string, req *flowengine.Request) (string, bool) {
	if strings.HasPrefix(next, "/") {
		return flowengine.RelativeNext(next, req)
	}
	if len(next) > 4096 || strings.ContainsAny(next, "\\") {
		return "", false
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	u, err := url.Parse(next)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if req != nil && host == strings.ToLower(stripPort(req.Host)) {
		return u.String(), true
	}
	if hostTrusted(host, a.trusted) {
		return u.String(), true
	}
	return "", false
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// hostTrusted matches exact names, or "*.example.com" for names ending in
// ".example.com" (on a dot boundary, so "evilexample.com" does not match).
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
