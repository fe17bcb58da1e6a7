package integration

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var csrfPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

const htmlFlow = "/.flowgate/flows/default-authentication/"

// startHTML opens the HTML flow and returns its CSRF token.
func (g *gateway) startHTML() string {
	g.t.Helper()
	resp, body := g.do("GET", htmlFlow+"?next=%2Fhome", "")
	m := csrfPattern.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		g.t.Fatalf("flow page: %d\n%s", resp.StatusCode, body)
	}
	return m[1]
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "Content-Type: application/x-www-form-urlencoded"

func TestHTMLFormFlowWithCSRF(t *testing.T) {
	g := startGateway(t, "", "")
	token := g.startHTML()
	resp, _ := g.do("POST", htmlFlow, form("csrf_token", token, "uid_field", "alice"), formType, "Origin: null")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != htmlFlow {
		t.Fatalf("identification POST: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := g.do("GET", htmlFlow, "")
	if !strings.Contains(body, `autocomplete="current-password"`) || !strings.Contains(body, "Step 2 of 2") {
		t.Fatalf("password page:\n%s", body)
	}
	// Every answer moves the execution to a new ID, secret and CSRF token: the
	// page's token is the one to send, the first page's is refused.
	next := csrfPattern.FindStringSubmatch(body)[1]
	if next == token {
		t.Fatal("the CSRF token did not change with the answer")
	}
	if resp, _ := g.do("POST", htmlFlow, form("csrf_token", token, "password", "pw-alice"), formType); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the previous step's CSRF token: %d, want 403", resp.StatusCode)
	}
	g.do("POST", htmlFlow, form("csrf_token", next, "password", "wrong"), formType, "Origin: "+base)
	resp, body = g.do("GET", htmlFlow, "")
	if !strings.Contains(body, `class="field-error" id="e-password"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("field error not shown next to the field:\n%s", body)
	}
	next = csrfPattern.FindStringSubmatch(body)[1]
	resp, _ = g.do("POST", htmlFlow, form("csrf_token", next, "password", "pw-alice"), formType)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/home" || g.sessionCookie() == nil {
		t.Fatalf("password POST: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Each bad request gets a clear 4xx and changes nothing: the flow can still be
// finished afterwards from where it was.
func TestBadInputOnFlowEndpoints(t *testing.T) {
	g := startGateway(t, "", "")
	token := g.startHTML()
	big := strings.Repeat("x", 70<<10)
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"html body over 64 KiB", "POST", htmlFlow, form("csrf_token", token, "uid_field", big), []string{formType}, 413},
		{"json body over 64 KiB", "POST", apiFlow, `{"uid_field":"` + big + `"}`, []string{"Content-Type: application/json"}, 413},
		{"malformed json", "POST", apiFlow, `{"uid_field":`, []string{"Content-Type: application/json"}, 400},
		{"json array", "POST", apiFlow, `["alice"]`, []string{"Content-Type: application/json"}, 400},
		{"wrong content type", "POST", apiFlow, `{"uid_field":"alice"}`, []string{"Content-Type: text/plain"}, 415},
		{"form to the API", "POST", apiFlow, "uid_field=alice", []string{formType}, 415},
		{"missing csrf token", "POST", htmlFlow, form("uid_field", "alice"), []string{formType}, 403},
		{"wrong csrf token", "POST", htmlFlow, form("csrf_token", "forged", "uid_field", "alice"), []string{formType}, 403},
		{"foreign origin", "POST", htmlFlow, form("csrf_token", token, "uid_field", "alice"), []string{formType, "Origin: https://evil.example"}, 403},
		{"cross-site fetch", "POST", apiFlow, `{"uid_field":"alice"}`, []string{"Content-Type: application/json", "Sec-Fetch-Site: cross-site"}, 403},
		{"extra answer key", "POST", apiFlow, `{"uid_field":"alice","admin":"1"}`, []string{"Content-Type: application/json"}, 400},
		{"wrong answer type", "POST", apiFlow, `{"uid_field":{"$ne":1}}`, []string{"Content-Type: application/json"}, 400},
		{"unknown flow slug (html)", "GET", "/.flowgate/flows/no-such-flow/", "", nil, 404},
		{"unknown flow slug (api)", "GET", "/.flowgate/api/v1/flows/no-such-flow/", "", nil, 404},
		{"unknown endpoint", "GET", "/.flowgate/nothing", "", nil, 404},
		{"method", "DELETE", htmlFlow, "", nil, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(tc.method, tc.path, tc.body, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if strings.Contains(tc.path, "/api/") && !strings.Contains(body, `"type":"error"`) {
				t.Fatalf("API error body: %s", body)
			}
		})
	}
	// Nothing changed: the execution still waits for identification.
	_, ch := g.getJSON(apiFlow)
	if stage(ch) != "identification" {
		t.Fatalf("bad requests moved the flow: %v", ch)
	}
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("flow unusable after bad input: %v", res)
	}
}

func TestExpiredExecution(t *testing.T) {
	g := startGateway(t, "", "")
	g.getJSON(apiFlow) // plan an execution, remembered in the flow cookie
	jar, _ := cookiejar.New(nil)
	g.tc.Client.Jar = jar // a browser that lost it, or whose execution timed out
	u, _ := url.Parse(base + "/.flowgate/")
	jar.SetCookies(u, nil)
	resp, body := g.do("POST", apiFlow, `{"uid_field":"alice"}`, "Content-Type: application/json")
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, `"type":"error"`) {
		t.Fatalf("POST without execution: %d %s", resp.StatusCode, body)
	}
	resp, body = g.do("POST", htmlFlow, form("csrf_token", "x", "uid_field", "alice"), formType)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") {
		t.Fatalf("HTML POST without execution: %d", resp.StatusCode)
	}
}

func TestForgedAndRotatedCookies(t *testing.T) {
	g := startGateway(t, "", "")
	g.login("alice", "pw-alice", "/")
	good := g.sessionCookie()
	try := func(value string) int {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(base)
		jar.SetCookies(u, []*http.Cookie{{Name: "flowgate_session", Value: value}})
		g.tc.Client.Jar = jar
		status, _ := g.upstreamHeaders("/")
		return status
	}
	for name, v := range map[string]string{
		"truncated": good.Value[:len(good.Value)/2],
		"garbage":   "not-a-cookie",
		"flipped":   flip(good.Value, 20),
		"empty":     "",
	} {
		if got := try(v); got != http.StatusUnauthorized {
			t.Errorf("%s cookie: %d, want 401", name, got)
		}
	}
	if got := try(good.Value); got != 200 {
		t.Fatalf("the real cookie: %d", got)
	}
	// Rotation: a new first key pair still decodes cookies of the old one…
	g.load("\t\tsecret_keys "+hashKey2+" "+blockKey2+" "+hashKey1+" "+blockKey1, "")
	if got := try(good.Value); got != 200 {
		t.Fatalf("cookie of a rotated-out-but-listed key: %d", got)
	}
	// …and once the old pair is removed, its cookies are refused.
	g.load("\t\tsecret_keys "+hashKey2+" "+blockKey2, "")
	if got := try(good.Value); got != http.StatusUnauthorized {
		t.Fatalf("cookie signed with a removed key: %d, want 401", got)
	}
}

// flip changes one character of a cookie value.
func flip(v string, i int) string {
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}
