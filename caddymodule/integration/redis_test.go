package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine/store/redis/redistest"
)

const baseB = "http://localhost:9180"

// redisConfig is a gateway on port with storage in Redis; no secret_keys, so the
// replicas share generated keys through Redis.
func redisConfig(admin string, port int, redisAddr, prefix, seed, upstream string) string {
	bp := ""
	if seed != "" {
		bp = "blueprints " + seed
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	http_port %d
	https_port %d
	grace_period 1ns
	flowgate {
		storage redis redis://%s {
			prefix %s
			dial_timeout 200ms
			read_timeout 200ms
		}
		%s
	}
}
http://localhost:%d {
	flowgate
	reverse_proxy %s
}
`, admin, port, port+363, redisAddr, prefix, bp, port, upstream)
}

// startReplica runs a second gateway process (this test binary as Caddy).
func startReplica(t *testing.T, config string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	os.WriteFile(file, []byte(config), 0o600)
	log, _ := os.Create(filepath.Join(dir, "replica.log"))
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLOWGATE_CHILD_CADDYFILE="+file)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("replica log:\n%s", tail(string(b), 3000))
		}
	})
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(baseB + "/.flowgate/static/flowgate.css"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("replica did not start")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// get sends a request with an explicit session cookie, no jar, no redirects.
func get(t *testing.T, url, cookie string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "flowgate_session="+cookie)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// within polls cond every 20ms for at most d and reports how long it took.
func within(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			if took := time.Since(start); took <= d {
				return took, true
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

func TestRedisReplicas(t *testing.T) {
	srv := redistest.Start(t)
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	up := strings.TrimPrefix(g.up.URL, "http://")
	g.tc = newTester(t)
	g.tc.InitServer(redisConfig("localhost:2999", 9080, srv.Addr, "{fg-replicas}:", g.seed, up), "caddyfile")
	g.tc.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	startReplica(t, redisConfig("localhost:2998", 9180, srv.Addr, "{fg-replicas}:", "", up))

	// Log in on A; the cookie works on B.
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("login on A: %v", res)
	}
	cookie := g.sessionCookie().Value
	status, body, _ := get(t, baseB+"/app", cookie)
	if status != 200 || !strings.Contains(body, `"Remote-User":["alice"]`) {
		t.Fatalf("A's cookie on B: %d %s", status, body)
	}
	// A has served (and cached) the session; log out on B; A refuses the old
	// cookie within 1s all the same.
	if s, _, _ := get(t, base+"/app", cookie); s != 200 {
		t.Fatalf("cookie on A: %d", s)
	}
	loc := baseB + "/.flowgate/logout"
	for i := 0; i < 4 && loc != ""; i++ {
		_, _, h := get(t, loc, cookie)
		loc = h.Get("Location")
		if loc != "" && !strings.HasPrefix(loc, "http") {
			loc = baseB + loc
		}
		if loc == baseB+"/" {
			break
		}
	}
	took, ok := within(time.Second, func() bool { s, _, _ := get(t, base+"/app", cookie); return s == 401 })
	if !ok {
		t.Fatalf("A still accepts the cookie %v after logout on B", took)
	}
	t.Logf("logout on B refused on A after %v", took)

	// A blueprint imported on A is live on B within 1s.
	doc := "version: 1\nstages:\n  - {name: hi, type: dummy}\nflows:\n  - {slug: replicated, title: Replicated, designation: enrollment, stages: [{stage: hi, order: 1}]}\n"
	if status, body := adminDo(t, "POST", "/flowgate/import", doc, "application/yaml"); status != 200 {
		t.Fatalf("import on A: %d %s", status, body)
	}
	took, ok = within(time.Second, func() bool { s, _, _ := get(t, baseB+"/.flowgate/flows/replicated/", ""); return s == 200 })
	if !ok {
		t.Fatalf("imported flow not live on B after %v", took)
	}
	t.Logf("import on A live on B after %v", took)

	// A user added on A logs in on B.
	if status, body := adminDo(t, "POST", "/flowgate/users", `{"username":"erin","password":"pw-erin"}`, "application/json"); status != 201 {
		t.Fatalf("add user on A: %d %s", status, body)
	}
	b := &gateway{t: t, tc: newTester(t)}
	b.tc.Client.CheckRedirect = g.tc.Client.CheckRedirect
	if res := loginAt(b, baseB, "erin", "pw-erin"); res["type"] != "redirect" {
		t.Fatalf("user from A logging in on B: %v", res)
	}

	// Brute force spread over both replicas counts once: five failures, half on
	// each, lock the user everywhere (the right password too); unlock lifts it.
	for i := 0; i < 5; i++ {
		site := base
		if i%2 == 1 {
			site = baseB
		}
		loginAt(&gateway{t: t, tc: newTester(t)}, site, "bob", "wrong")
	}
	for _, site := range []string{base, baseB} {
		res := loginAt(&gateway{t: t, tc: newTester(t)}, site, "bob", "pw-bob")
		if res["type"] == "redirect" || !strings.Contains(fmt.Sprint(res["messages"]), "Too many failed attempts") {
			t.Fatalf("%s after spread-out failures: %v", site, res)
		}
	}
	if status, _ := adminDo(t, "POST", "/flowgate/users/bob/unlock", "", ""); status != 200 {
		t.Fatalf("unlock: %d", status)
	}
	if res := loginAt(&gateway{t: t, tc: newTester(t)}, baseB, "bob", "pw-bob"); res["type"] != "redirect" {
		t.Fatalf("after unlock: %v", res)
	}

	// Redis goes away: protected routes and flow pages answer 503, never let through.
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("login again: %v", res)
	}
	cookie = g.sessionCookie().Value
	srv.Stop()
	time.Sleep(800 * time.Millisecond) // past the 750ms cache TTL
	if s, body, _ := get(t, base+"/app", cookie, "Accept: text/html"); s != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("protected route during outage: %d\n%s", s, body)
	}
	if s, _, _ := get(t, base+"/.flowgate/flows/default-authentication/", ""); s != 503 {
		t.Fatalf("flow page during outage: %d", s)
	}
	if s, _, _ := get(t, baseB+"/app", cookie); s != 503 {
		t.Fatalf("replica during outage: %d", s)
	}
	lost := "version: 1\nstages:\n  - {name: hi, type: dummy}\nflows:\n  - {slug: during-outage, title: Lost, designation: enrollment, stages: [{stage: hi, order: 1}]}\n"
	if status, body := adminDo(t, "POST", "/flowgate/import", lost, "application/yaml"); status != 503 {
		t.Fatalf("import during outage: %d %s, want 503", status, body)
	}
	// …and everything recovers by itself; append-only persistence kept the session.
	srv.Restart()
	if took, ok := within(5*time.Second, func() bool { s, _, _ := get(t, base+"/app", cookie); return s == 200 }); !ok {
		t.Fatalf("no recovery after %v", took)
	}
	if s, _, _ := get(t, base+"/.flowgate/flows/during-outage/", ""); s != 404 {
		t.Fatalf("flow of the import refused during the outage: %d after recovery, want 404", s)
	}
	if s, _, _ := get(t, baseB+"/app", cookie); s != 200 {
		t.Fatalf("replica after recovery: %d", s)
	}
}

// loginAt signs in through the JSON API of the gateway at site.
func loginAt(g *gateway, site, user, password string) map[string]any {
	g.t.Helper()
	post := func(body string) map[string]any {
		req, _ := http.NewRequest("POST", site+apiFlow, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := g.tc.Client.Do(req)
		if err != nil {
			g.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return decode(g.t, string(b))
	}
	resp, err := g.tc.Client.Get(site + apiFlow)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	post(fmt.Sprintf(`{"uid_field":%q}`, user))
	return post(fmt.Sprintf(`{"password":%q}`, password))
}

// A gateway whose Redis is down at start loads its config, answers 503, and
// serves once Redis is back (retrying with backoff).
func TestRedisDownAtStart(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.tc = newTester(t)
	g.tc.InitServer(redisConfig("localhost:2999", 9080, srv.Addr, "{fg-down}:", g.seed, strings.TrimPrefix(g.up.URL, "http://")), "caddyfile")
	if s, _, _ := get(t, base+"/.flowgate/flows/default-authentication/", ""); s != 503 {
		t.Fatalf("while Redis is down: %d, want 503", s)
	}
	if s, _, _ := get(t, base+"/app", "", "Accept: text/html"); s != 503 {
		t.Fatalf("protected route while Redis is down: %d, want 503 (never a login redirect or a pass)", s)
	}
	srv.Restart()
	if took, ok := within(8*time.Second, func() bool {
		s, _, _ := get(t, base+"/.flowgate/flows/default-authentication/", "")
		return s == 200
	}); !ok {
		t.Fatalf("not serving %v after Redis came back", took)
	}
	if res := g.login("alice", "pw-alice", "/"); res["type"] != "redirect" {
		t.Fatalf("login after recovery: %v", res)
	}
}
