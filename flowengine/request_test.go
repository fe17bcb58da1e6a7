package flowengine_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

func TestTrustedNext(t *testing.T) {
	v := flowengine.TrustedNext([]string{"*.Example.com", "app.example.org", "api.example.net:8443", "*.svc.example.net:9000"})
	r := &flowengine.Request{Scheme: "https", Host: "gate.local:8443"}
	cases := []struct {
		next string
		ok   bool
	}{
		{"/", true}, {"/a/b?c=d#e", true}, {"/%2e%2e/x", true},
		{"", false}, {"a/b", false}, {"//evil.example", false}, {"/\\evil.example", false},
		{"/%2F%2Fevil.example", false}, {"/%2f/evil.example", false}, {"/%5Cevil", false},
		{"/x\ty", false}, {"/x\x00", false}, {"/x%0d%0aSet-Cookie:a", false}, {"/%zz", false},
		// The site's own authority: host and port (another port can be another service).
		{"https://gate.local:8443/x", true}, {"https://GATE.local:8443/x", true},
		{"https://gate.local/x", false}, {"https://GATE.local:9999/x", false}, {"http://gate.local/x", false},
		// Trusted entries: without a port any port, with a port only that one.
		{"https://a.example.com:1234/", true}, {"https://app.example.org:8080/", true},
		{"https://api.example.net:8443/", true}, {"https://api.example.net/", false}, {"https://api.example.net:8444/", false},
		{"http://x.svc.example.net:9000/", true}, {"http://x.svc.example.net/", false},
		{"https://a.example.com/", true}, {"https://a.b.example.com/", true},
		{"https://example.com/", false}, {"https://evilexample.com/", false},
		{"https://example.com.evil.example/", false}, {"https://app.example.org/", true},
		{"https://user:pw@app.example.org/", false}, {"ftp://app.example.org/", false},
		{"javascript:alert(1)", false}, {"https:app.example.org", false}, {"http:///x", false},
		{"https://app.example.org\\@evil.example/", false}, {"HTTPS://app.example.org/", true},
	}
	// A site on the default port: the port may be written or implied.
	def := &flowengine.Request{Scheme: "https", Host: "site.local"}
	for next, want := range map[string]bool{
		"https://site.local/": true, "https://site.local:443/": true, "https://site.local:8443/": false,
		"http://site.local/": false, "http://site.local:443/": true,
	} {
		if _, ok := v(next, def); ok != want {
			t.Errorf("%q on https://site.local: ok=%v, want %v", next, ok, want)
		}
	}
	for _, tc := range cases {
		got, ok := v(tc.next, r)
		if ok != tc.ok {
			t.Errorf("%q: ok=%v, want %v", tc.next, ok, tc.ok)
		}
		if ok && got == "" {
			t.Errorf("%q: accepted but empty", tc.next)
		}
	}
}

// FuzzNext: whatever the validator accepts is a local path that cannot become
// protocol-relative, or an http(s) URL on a trusted or the request's own host.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"/ok", "//evil", "/%2F%2Fx", "https://a.example.com/", "https://evil/", "/\\x", "https://u@a.example.com"} {
		f.Add(s)
	}
	for _, s := range []string{"https://gate.local/", "https://gate.local:8080/", "http://gate.local:443/", "https://gate.local:443/",
		"https://api.example.net:8443/", "https://api.example.net:9/"} {
		f.Add(s)
	}
	v := flowengine.TrustedNext([]string{"*.example.com", "api.example.net:8443"})
	r := &flowengine.Request{Scheme: "https", Host: "gate.local"}
	f.Fuzz(func(t *testing.T, next string) {
		got, ok := v(next, r)
		if !ok {
			return
		}
		if strings.HasPrefix(got, "/") {
			dec, err := url.PathUnescape(got)
			if err != nil || strings.HasPrefix(got, "//") || strings.HasPrefix(dec, "//") || strings.ContainsAny(dec, "\\\r\n\x00") {
				t.Fatalf("accepted unsafe path %q", got)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
			t.Fatalf("accepted %q", got)
		}
		h, port := strings.ToLower(u.Hostname()), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
		}
		switch {
		case h == "gate.local" && port == "443", strings.HasSuffix(h, ".example.com"), h == "api.example.net" && port == "8443":
		default:
			t.Fatalf("accepted foreign authority %s:%s in %q", h, port, got)
		}
	})
}
