package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads one sample of Caddy's admin /metrics; 0 if absent.
func scrape(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// auditEntries reads the JSON lines Caddy wrote for the flowgate.audit logger.
func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// A login and a failed login show in Caddy's /metrics and as flowgate.audit
// entries; labels and entries carry no password, and labels no username.
func TestMetricsAndAuditLog(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	auditLog := filepath.Join(g.dir, "audit.log")
	cfg := g.config("", "policy staff-only")
	cfg = strings.Replace(cfg, "\tgrace_period 1ns\n", "\tgrace_period 1ns\n\tlog audit {\n\t\tinclude flowgate.audit\n\t\toutput file "+auditLog+"\n\t\tformat json\n\t}\n", 1)
	g.tc = newTester(t)
	g.tc.InitServer(cfg, "caddyfile")
	g.tc.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	const (
		success = `flowgate_logins_total{result="success"}`
		failure = `flowgate_logins_total{result="failure"}`
		allow   = `flowgate_protect_decisions_total{decision="allow"}`
		deny    = `flowgate_protect_decisions_total{decision="deny"}`
		login   = `flowgate_protect_decisions_total{decision="login"}`
		done    = `flowgate_flow_executions_total{flow="default-authentication",result="completed"}`
		pass    = `flowgate_policy_evaluations_total{policy="staff-only",result="pass"}`
	)
	before := map[string]float64{}
	for _, s := range []string{success, failure, allow, deny, login, done, pass} {
		before[s] = scrape(t, s)
	}
	g.do("GET", "/inside", "", "Accept: application/json") // no session: login
	if res := g.login("bob", "wrong-password-123", "/"); res["type"] != "challenge" {
		t.Fatalf("failed login: %v", res)
	}
	_, res := g.postJSON(apiFlow, map[string]string{"password": "pw-bob"})
	if res["type"] != "redirect" {
		t.Fatalf("login: %v", res)
	}
	g.do("GET", "/inside", "") // bob is not staff: deny
	want := map[string]float64{success: 1, failure: 1, login: 1, deny: 1, done: 1}
	for s, d := range want {
		if got := scrape(t, s) - before[s]; got != d {
			t.Errorf("%s grew by %v, want %v", s, got, d)
		}
	}
	resp, err := http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ours []string // flowgate's series; Caddy's own name upstream addresses
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "flowgate_") {
			ours = append(ours, line)
		}
	}
	for _, leak := range []string{"bob", "pw-bob", "wrong-password-123", "127.0.0.1"} {
		if strings.Contains(strings.Join(ours, "\n"), leak) {
			t.Errorf("flowgate's metrics contain %q", leak)
		}
	}
	if !strings.Contains(string(raw), "flowgate_stage_duration_seconds_bucket{flow=\"default-authentication\",stage=\"default-authentication-password\"") {
		t.Error("no stage duration histogram for the password stage")
	}
	if !strings.Contains(string(raw), `flowgate_sessions_active{store="bolt"}`) {
		t.Error("no sessions gauge for the bolt store")
	}

	// The audit log: the failure, the login and the denial, each with user,
	// client IP and flow; no password anywhere.
	var entries []map[string]any
	for i := 0; i < 50; i++ {
		entries = auditEntries(t, auditLog)
		if len(entries) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]map[string]any{}
	for _, e := range entries {
		if e["logger"] != "flowgate.audit" {
			t.Errorf("entry from logger %v in the audit log", e["logger"])
		}
		name, _ := e["event"].(string)
		seen[name] = e
	}
	for _, name := range []string{"login_failed", "login_succeeded", "authorization_denied", "config_imported"} {
		e := seen[name]
		if e == nil {
			t.Fatalf("no %s entry in %v", name, entries)
		}
		if name != "config_imported" && (e["user"] != "bob" || e["client_ip"] != "127.0.0.1") {
			t.Errorf("%s entry: %v", name, e)
		}
	}
	if seen["login_failed"]["flow"] != "default-authentication" || seen["login_failed"]["stage"] != "default-authentication-password" {
		t.Errorf("login_failed entry: %v", seen["login_failed"])
	}
	rawLog, _ := os.ReadFile(auditLog)
	for _, leak := range []string{"pw-bob", "wrong-password-123", "flowgate_session"} {
		if strings.Contains(string(rawLog), leak) {
			t.Errorf("the audit log contains %q", leak)
		}
	}
}
