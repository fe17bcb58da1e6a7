package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// floodClient is one client of a login flood: its own cookie jar, so its own
// execution of the flow.
type floodClient struct {
	c *http.Client
}

func newFloodClient(t *testing.T) *floodClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &floodClient{c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request; headers are "Name: value".
func (f *floodClient) do(method, path, body string, headers ...string) (*http.Response, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return nil, "", err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := f.c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, string(raw), err
}

// send sends a JSON API request (a POST when body is not nil) and returns the
// status, the Retry-After header and the decoded answer.
func (f *floodClient) send(path string, body any) (int, string, map[string]any, error) {
	method, raw, headers := http.MethodGet, []byte(nil), []string(nil)
	if body != nil {
		raw, _ = json.Marshal(body)
		method, headers = http.MethodPost, []string{"Content-Type: application/json"}
	}
	resp, text, err := f.do(method, path, string(raw), headers...)
	if err != nil {
		return 0, "", nil, err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return resp.StatusCode, "", nil, fmt.Errorf("not JSON (%d): %s", resp.StatusCode, text)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), m, nil
}

// csrf fetches the HTML flow page and returns its CSRF token.
func (f *floodClient) csrf(path string) (string, error) {
	resp, body, err := f.do(http.MethodGet, path, "")
	if err != nil {
		return "", err
	}
	m := csrfPattern.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("flow page: %d", resp.StatusCode)
	}
	return m[1], nil
}

// A burst of password answers at a gateway that hashes one password at a time
// with one waiting: every one is answered (a challenge, or 429 with
// Retry-After, never a 5xx or a dropped connection), some are refused busy, a
// refused one can simply be sent again, and a signed-in user's requests are
// served throughout.
func TestLoginFloodIsBounded(t *testing.T) {
	g := startGateway(t, "password_hashing {\n\t\t\tconcurrency 1\n\t\t\tqueue 1\n\t\t}", "")
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("alice's login: %v", res)
	}
	session := g.sessionCookie()
	if session == nil {
		t.Fatal("no session cookie")
	}

	// Identified executions, each its own client: unknown names (checked
	// against the dummy hash of the default cost) and bob.
	const n = 30
	clients := make([]*floodClient, n)
	for i := range clients {
		clients[i] = newFloodClient(t)
		uid := fmt.Sprintf("nobody-%d", i)
		if i%3 == 0 {
			uid = "bob"
		}
		if status, _, ch, err := clients[i].send(apiFlow+"?next=/", nil); err != nil || status != 200 || stage(ch) != "identification" {
			t.Fatalf("client %d start: %d %v %v", i, status, ch, err)
		}
		if status, _, ch, err := clients[i].send(apiFlow, map[string]string{"uid_field": uid}); err != nil || status != 200 || stage(ch) != "password" {
			t.Fatalf("client %d identification: %d %v %v", i, status, ch, err)
		}
	}

	// alice browses while the flood runs.
	stop := make(chan struct{})
	type browse struct {
		status int
		took   time.Duration
		err    error
	}
	var browsed []browse
	browsing := make(chan struct{})
	go func() {
		defer close(browsing)
		c := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			req.AddCookie(session)
			start := time.Now()
			resp, err := c.Do(req)
			b := browse{took: time.Since(start), err: err}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				b.status = resp.StatusCode
			}
			browsed = append(browsed, b)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	type answer struct {
		status     int
		retryAfter string
		body       map[string]any
		err        error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			var a answer
			a.status, a.retryAfter, a.body, a.err = c.send(apiFlow, map[string]string{"password": "wrong"})
			answers[i] = a
		}()
	}
	close(gate)
	wg.Wait()
	close(stop)
	<-browsing

	var refused []int
	counts := map[int]int{}
	for i, a := range answers {
		counts[a.status]++
		switch {
		case a.err != nil:
			t.Errorf("answer %d: no answer: %v", i, a.err)
		case a.status == http.StatusOK:
			if a.body["type"] != "challenge" || stage(a.body) != "password" {
				t.Errorf("answer %d: 200 but %v", i, a.body)
			}
		case a.status == http.StatusTooManyRequests:
			msg, _ := a.body["message"].(string)
			if a.retryAfter == "" || a.body["type"] != "error" || !strings.Contains(msg, "busy") {
				t.Errorf("answer %d: 429 with Retry-After %q and %v", i, a.retryAfter, a.body)
			}
			refused = append(refused, i)
		default:
			t.Errorf("answer %d: status %d %v", i, a.status, a.body)
		}
	}
	t.Logf("flood answers by status: %v", counts)
	if len(refused) == 0 {
		t.Fatalf("no answer was refused busy with one hashing slot and one place in the queue: %v", counts)
	}

	var took []time.Duration
	for i, b := range browsed {
		if b.err != nil || b.status != http.StatusOK {
			t.Errorf("alice's request %d during the flood: %d %v", i, b.status, b.err)
		}
		took = append(took, b.took)
	}
	if len(took) == 0 {
		t.Fatal("alice sent no request during the flood")
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("alice's %d requests during the flood: p50 %s, max %s", len(took), took[len(took)/2], took[len(took)-1])

	// A refused answer was not heard: sent again, it is checked.
	c := clients[refused[0]]
	for try := 0; ; try++ {
		time.Sleep(time.Second) // Retry-After
		status, _, body, err := c.send(apiFlow, map[string]string{"password": "wrong"})
		if err == nil && status == http.StatusOK && stage(body) == "password" {
			break
		}
		if err != nil || status != http.StatusTooManyRequests || try == 5 {
			t.Fatalf("refused answer sent again: %d %v %v", status, body, err)
		}
	}
}

// The HTML flow under the same flood: a busy answer is the error page with
// status 429, Retry-After, and a link back to the step, which is still there.
func TestLoginFloodHTML(t *testing.T) {
	startGateway(t, "password_hashing {\n\t\t\tconcurrency 1\n\t\t\tqueue 1\n\t\t}", "")
	const n = 16
	clients := make([]*floodClient, n)
	tokens := make([]string, n)
	for i := range clients {
		c := newFloodClient(t)
		clients[i] = c
		token, err := c.csrf(htmlFlow + "?next=/")
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := c.do(http.MethodPost, htmlFlow, form("csrf_token", token, "uid_field", fmt.Sprintf("nobody-%d", i)), formType)
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("client %d identification: %v %v", i, resp, err)
		}
		if tokens[i], err = c.csrf(htmlFlow); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			var a answer
			a.resp, a.body, a.err = c.do(http.MethodPost, htmlFlow, form("csrf_token", tokens[i], "password", "wrong"), formType)
			answers[i] = a
		}()
	}
	close(gate)
	wg.Wait()
	refused := -1
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("answer %d: no answer: %v", i, a.err)
		case a.resp.StatusCode == http.StatusSeeOther:
		case a.resp.StatusCode == http.StatusTooManyRequests:
			if a.resp.Header.Get("Retry-After") == "" || !strings.Contains(a.body, "busy") ||
				!strings.Contains(a.body, `href="`+htmlFlow+`"`) || !strings.Contains(a.resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("answer %d: 429 page (Retry-After %q):\n%s", i, a.resp.Header.Get("Retry-After"), a.body)
			}
			refused = i
		default:
			t.Errorf("answer %d: status %d\n%s", i, a.resp.StatusCode, a.body)
		}
	}
	if refused < 0 {
		t.Fatal("no HTML answer was refused busy with one hashing slot and one place in the queue")
	}
	// The refused client's flow is still at the password step, its token still good.
	time.Sleep(time.Second)
	_, body, err := clients[refused].do(http.MethodGet, htmlFlow, "")
	if err != nil || !strings.Contains(body, `autocomplete="current-password"`) || strings.Contains(body, `id="e-password"`) {
		t.Fatalf("after a busy answer, the flow page (%v):\n%s", err, body)
	}
}

// The password_hashing global option, Caddyfile → JSON, and its mistakes with
// the file and line.
func TestAdaptPasswordHashing(t *testing.T) {
	cases := []struct{ name, block, want, wantErr string }{
		{name: "all set", block: "concurrency 3\n\t\t\tqueue 9\n\t\t\tmax_wait 500ms",
			want: `"password_hashing":{"concurrency":3,"queue":9,"max_wait":500000000}`},
		{name: "defaults", block: "", want: `"password_hashing":{}`},
		{name: "zero concurrency", block: "concurrency 0", wantErr: `password_hashing concurrency: "0" is not a positive number, at Caddyfile:4`},
		{name: "negative queue", block: "queue -1", wantErr: "Caddyfile:4"},
		{name: "bad wait", block: "max_wait soon", wantErr: `password_hashing max_wait: "soon" is not a positive duration, at Caddyfile:4`},
		{name: "unknown option", block: "concurency 2", wantErr: `unknown password_hashing option "concurency", at Caddyfile:4`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "{\n\tflowgate {\n\t\tpassword_hashing {\n\t\t\t" + tc.block + "\n\t\t}\n\t}\n}\n:80 {\n\tflowgate\n}\n"
			out, err := adapt(t, "Caddyfile", src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("adapted (%v):\n%s\nwant it to contain %s", err, out, tc.want)
			}
		})
	}
}
