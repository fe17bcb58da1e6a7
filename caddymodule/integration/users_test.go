package integration

import (
	"encoding/json"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// A username must stay one admin API path segment: one with "/" is refused,
// and one with reserved characters is managed through its escaped form.
func TestAdminAPIUsernames(t *testing.T) {
	g := startGateway(t, "", "")
	for _, tc := range []struct{ name, body, want string }{
		{"slash", `{"username":"ops/alice","password":"pw"}`, `must not contain '/'`},
		{"backslash", `{"username":"corp\\alice","password":"pw"}`, `must not contain '\\\\'`},
		{"control character", `{"username":"a\u0000b","password":"pw"}`, "control"},
		{"empty", `{"username":"  ","password":"pw"}`, "username is empty"},
		{"display-name email", `{"username":"alice2","email":"Alice <a@example.com>","password":"pw"}`, "not a bare address"},
		{"no password", `{"username":"alice2"}`, "password is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := adminDo(t, "POST", "/flowgate/users", tc.body, "application/json")
			if status != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("POST %s: %d %s, want 400 naming %q", tc.body, status, body, tc.want)
			}
		})
	}
	// An escaped "/" stays inside its segment: it names a user, not a route.
	if status, body := adminDo(t, "GET", "/flowgate/users/ops%2Falice/sessions", "", ""); status != 404 || !strings.Contains(body, `no user \"ops/alice\"`) {
		t.Fatalf("escaped slash: %d %s", status, body)
	}

	for _, name := range []string{"Ada Lovelace", "jürgen", "50%off"} {
		t.Run(name, func(t *testing.T) {
			path := "/flowgate/users/" + url.PathEscape(name)
			req, _ := json.Marshal(map[string]string{"username": name, "email": "x@example.com", "password": "first-pw"})
			if status, body := adminDo(t, "POST", "/flowgate/users", string(req), "application/json"); status != 201 {
				t.Fatalf("create: %d %s", status, body)
			}
			status, body := adminDo(t, "GET", path, "", "")
			var u map[string]any
			json.Unmarshal([]byte(body), &u)
			if status != 200 || u["username"] != name {
				t.Fatalf("GET %s: %d %s", path, status, body)
			}
			if status, body := adminDo(t, "PUT", path+"/password", `{"password":"second-pw"}`, "application/json"); status != 200 {
				t.Fatalf("PUT %s/password: %d %s", path, status, body)
			}
			g.tc.Client.Jar, _ = cookiejar.New(nil)
			if res := g.login(name, "second-pw", "/"); res["type"] != "redirect" {
				t.Fatalf("login with the changed password: %v", res)
			}
			if status, body := adminDo(t, "GET", path+"/sessions", "", ""); status != 200 || strings.Count(body, "created_at") != 1 {
				t.Fatalf("GET %s/sessions: %d %s", path, status, body)
			}
			if status, body := adminDo(t, "DELETE", path, "", ""); status != 200 || !strings.Contains(body, name) {
				t.Fatalf("DELETE %s: %d %s", path, status, body)
			}
			if status, _ := adminDo(t, "GET", path, "", ""); status != 404 {
				t.Fatalf("GET deleted %s: %d", path, status)
			}
		})
	}
}
