package flowengine_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

func TestTrustedNext(t *testing.T) {
	v := flowengine.TrustedNext([]string{"*.Example.com", "app.example.org"})
	r := &flowengine.Request{Host: "gate.local:8443"}
	cases := []struct {
		next string
		ok   bool
	}{
		{"/", true}, {"/a/b?c=d#e", true}, {"/%2e%2e/x", true},
		{"", false}, {"a/b", false}, {"//evil.example", false}, {"/\\evil.example", false},
		{"/%2F%2Fevil.example", false}, {"/%2f/evil.example", false}, {"/%5Cevil", false},
		{"/x\ty", false}, {"/x\x00", false}, {"/x%0d%0aSet-Cookie:a", false}, {"/%zz", false},
		{"https://gate.local/x", true}, {"https://GATE.local:9999/x", true},
		{"https://a.example.com/", true}, {"https://a.b.example.com/", true},
		{"https://example.com/", false}, {"https://evilexample.com/", false},
		{"https://example.com.evil.example/", false}, {"https://app.example.org/", true},
		{"https://user:pw@app.example.org/", false}, {"ftp://app.example.org/", false},
		{"javascript:alert(1)", false}, {"https:app.example.org", false}, {"http:///x", false},
		{"https://app.example.org\\@evil.example/", false}, {"HTTPS://app.example.org/", true},
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
	v := flowengine.TrustedNext([]string{"*.example.com"})
	r := &flowengine.Request{Host: "gate.local"}
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
		h := strings.ToLower(u.Hostname())
		if h != "gate.local" && !strings.HasSuffix(h, ".example.com") {
			t.Fatalf("accepted foreign host %q in %q", h, got)
		}
	})
}
