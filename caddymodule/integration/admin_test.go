package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

const adminBase = "http://localhost:2999"

func adminDo(t *testing.T, method, path, body, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, adminBase+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminAPIFlows(t *testing.T) {
	g := startGateway(t, "", "")
	status, body := adminDo(t, "GET", "/flowgate/flows", "", "")
	if status != 200 || !strings.Contains(body, `"slug":"default-authentication"`) {
		t.Fatalf("list flows: %d %s", status, body)
	}
	status, body = adminDo(t, "GET", "/flowgate/flows/default-invalidation/export", "", "")
	if status != 200 || !strings.Contains(body, "type: user_logout") || strings.Contains(body, "identification") {
		t.Fatalf("export: %d\n%s", status, body)
	}
	status, _ = adminDo(t, "GET", "/flowgate/flows/nope/export", "", "")
	if status != 404 {
		t.Fatalf("export of unknown flow: %d", status)
	}
	// A rejected import answers 400 naming the entry and changes nothing.
	bad := "version: 1\nflows:\n  - slug: signup\n    designation: enrollment\n    stages: [{stage: missing, order: 1}]\n"
	status, body = adminDo(t, "POST", "/flowgate/import?name=signup.yaml", bad, "application/yaml")
	if status != 400 || !strings.Contains(body, `signup.yaml:3: flow signup: stages[0]: unknown stage \"missing\"`) {
		t.Fatalf("bad import: %d %s", status, body)
	}
	if resp, _ := g.do("GET", "/.flowgate/flows/signup/", ""); resp.StatusCode != 404 {
		t.Fatalf("rejected flow is live: %d", resp.StatusCode)
	}
	// A good import is live at once, here as JSON.
	good := `{"version":1,"stages":[{"name":"welcome","type":"dummy"}],
	  "flows":[{"slug":"signup","title":"Join","designation":"enrollment","stages":[{"stage":"welcome","order":1}]}]}`
	status, body = adminDo(t, "POST", "/flowgate/import", good, "application/json")
	if status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	resp, page := g.do("GET", "/.flowgate/flows/signup/", "")
	if resp.StatusCode != 200 || !strings.Contains(page, "Join") {
		t.Fatalf("imported flow not served: %d", resp.StatusCode)
	}
}

func TestAdminAPIUsers(t *testing.T) {
	g := startGateway(t, "", "")
	status, body := adminDo(t, "POST", "/flowgate/users", `{"username":"Carol","email":"carol@example.com","password":"first-pw","groups":["ops"]}`, "application/json")
	if status != 201 || strings.Contains(body, "password") {
		t.Fatalf("add user: %d %s", status, body)
	}
	if status, _ := adminDo(t, "POST", "/flowgate/users", `{"username":"carol","password":"x"}`, "application/json"); status != 409 {
		t.Fatalf("duplicate username (other case): %d, want 409", status)
	}
	if res := g.login("carol", "first-pw", "/"); res["type"] != "redirect" {
		t.Fatalf("login as added user: %v", res)
	}
	status, body = adminDo(t, "GET", "/flowgate/users", "", "")
	var users []map[string]any
	json.Unmarshal([]byte(body), &users)
	if status != 200 || len(users) != 3 || strings.Contains(body, "$2a$") || strings.Contains(body, "argon2") {
		t.Fatalf("list users: %d %s", status, body)
	}
	status, body = adminDo(t, "GET", "/flowgate/users/carol/sessions", "", "")
	if status != 200 || strings.Count(body, "created_at") != 1 {
		t.Fatalf("sessions: %d %s", status, body)
	}
	// Revoking ends the session everywhere at once.
	if status, _ := adminDo(t, "DELETE", "/flowgate/users/carol/sessions", "", ""); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if status, _ := g.upstreamHeaders("/"); status != http.StatusUnauthorized {
		t.Fatalf("revoked session still works: %d", status)
	}
	if status, _ := adminDo(t, "PUT", "/flowgate/users/carol/password", `{"password":"second-pw"}`, "application/json"); status != 200 {
		t.Fatalf("passwd: %d", status)
	}
	g.tc.Client.Jar, _ = cookiejar.New(nil)
	if res := g.login("carol", "first-pw", "/"); res["type"] == "redirect" {
		t.Fatal("old password still works")
	}
	g.tc.Client.Jar, _ = cookiejar.New(nil)
	if res := g.login("carol", "second-pw", "/"); res["type"] != "redirect" {
		t.Fatalf("new password: %v", res)
	}
	if status, _ := adminDo(t, "DELETE", "/flowgate/users/carol", "", ""); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	if status, _ := g.upstreamHeaders("/"); status != http.StatusUnauthorized {
		t.Fatalf("deleted user's session still works: %d", status)
	}
	if status, _ := adminDo(t, "GET", "/flowgate/users/carol", "", ""); status != 404 {
		t.Fatalf("deleted user: %d", status)
	}
}
