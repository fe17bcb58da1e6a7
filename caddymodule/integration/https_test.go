package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// On an https site every flowgate cookie is Secure and, without a cookie
// domain, __Host- prefixed (only this host over https can set it, so a sibling
// subdomain or a plain-http answer cannot plant one); same-origin checks use
// the https origin.
func TestHTTPSCookiesAreSecure(t *testing.T) {
	up := upstream(t)
	dir := t.TempDir()
	seed := demoUsers(t, dir)
	tc := newTester(t)
	tc.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	persist_config off
	http_port 9080
	https_port 9443
	grace_period 1ns
	skip_install_trust
	flowgate {
		storage bolt %s/flowgate.db
		blueprints %s
		secret_keys %s %s
	}
}
https://caddy.localhost:9443 {
	tls internal
	flowgate
	reverse_proxy %s
}
`, dir, seed, hashKey1, blockKey1, strings.TrimPrefix(up.URL, "http://")), "caddyfile")
	site := "https://caddy.localhost:9443"
	var cookies []*http.Cookie
	do := func(method, path, body string, headers ...string) *http.Response {
		req, _ := http.NewRequest(method, site+path, strings.NewReader(body))
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := tc.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies = append(cookies, resp.Cookies()...)
		return resp
	}
	// Caddy issues the internal certificate in the background: wait for it.
	for i := 0; i < 100; i++ {
		resp, err := tc.Client.Get(site + "/.flowgate/static/flowgate.css")
		if err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	do("GET", apiFlow, "")
	if resp := do("POST", apiFlow, `{"uid_field":"alice"}`, "Content-Type: application/json", "Origin: http://caddy.localhost:9443"); resp.StatusCode != 403 {
		t.Fatalf("http origin posting to the https site: %d, want 403", resp.StatusCode)
	}
	do("POST", apiFlow, `{"uid_field":"alice"}`, "Content-Type: application/json", "Origin: "+site)
	do("POST", apiFlow, `{"password":"pw-alice"}`, "Content-Type: application/json")
	seen := map[string]bool{}
	for _, c := range cookies {
		seen[c.Name] = true
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v Path %q Domain %q", c.Name, c.Secure, c.HttpOnly, c.SameSite, c.Path, c.Domain)
		}
	}
	if !seen["__Host-flowgate_session"] || !seen["__Host-flowgate_flow"] || seen["flowgate_session"] || seen["flowgate_flow"] {
		t.Fatalf("cookies set: %v", seen)
	}
	// The prefixed session cookie signs the browser in; neither flowgate cookie
	// reaches the upstream.
	req, _ := http.NewRequest("GET", site+"/inside", nil)
	resp, err := tc.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "flowgate_") || !strings.Contains(string(body), `"Remote-User":["alice"]`) {
		t.Fatalf("proxied with the __Host- session: %d %s", resp.StatusCode, body)
	}
}
