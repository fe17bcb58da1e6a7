package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explainPolicyFlow adds a flow with a flow policy (staff-only, from the demo
// users' blueprint) for the designation explanations.
const explainPolicyFlow = `version: 1
stages:
  - {name: st-id, type: identification}
  - {name: st-pw, type: password}
  - {name: st-login, type: user_login}
flows:
  - slug: staff-first
    name: Staff first
    designation: authentication
    order: -10
    policies: [{policy: staff-only}]
    stages:
      - {stage: st-id, order: 10}
      - {stage: st-pw, order: 20}
      - {stage: st-login, order: 30}
`

func TestExplainOnline(t *testing.T) {
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("op.yaml", opLogin)
	g.withBlueprint("staff-first.yaml", explainPolicyFlow)
	g.load("", "")
	addr := []string{"--address", "localhost:2999"}

	t.Run("cli", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{"bob meets the deny", []string{"--flow", "op-login", "--user", "bob"},
				[]string{"for bob, not signed in", "op-deny: runs [deny]", "group staff (negated): pass", "Outcome: denied at stage op-deny"}},
			{"alice skips it", []string{"--flow", "op-login", "--user", "alice", "--ip", "192.0.2.9", "--path", "/app?next=/dash"},
				[]string{"op-deny: skipped [deny]", "evaluated as if the user were identified", "from 192.0.2.9", "op-login-stage: runs",
					"Outcome: proceeds"}},
			{"an anonymous visitor meets the deny", []string{"--flow", "op-login"},
				[]string{"for an anonymous visitor", "op-deny: runs"}},
			{"designation, signed-in staff", []string{"--designation", "authentication", "--user", "alice", "--signed-in"},
				[]string{"1. staff-first (order -10): chosen", "2. default-authentication (order 0): not reached", "3. op-login (order 50): not reached"}},
			{"designation, signed-in non-staff", []string{"--designation", "authentication", "--user", "bob", "--signed-in"},
				[]string{"1. staff-first (order -10): denied", `policy staff-only: fail ["Staff only."]`, "2. default-authentication (order 0): chosen"}},
			{"designation, before sign-in", []string{"--designation", "authentication", "--user", "alice"},
				[]string{"Selection and planning see an anonymous visitor", "1. staff-first (order -10): denied"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := runCLI(t, "", append(append([]string{"explain"}, addr...), tc.args...)...)
				if err != nil {
					t.Fatalf("explain: %v\n%s", err, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
			})
		}
		out, err := runCLI(t, "", append(append([]string{"explain"}, addr...), "--flow", "op-login", "--user", "bob", "--json")...)
		var x struct {
			Outcome struct{ Result, At string }
			Runs    []string
		}
		if err != nil || json.Unmarshal([]byte(out), &x) != nil || x.Outcome.Result != "denied" || x.Outcome.At != "stage op-deny" ||
			strings.Join(x.Runs, " ") != "op-id op-pw op-deny" {
			t.Fatalf("--json: %v %+v\n%s", err, x, out)
		}
		for _, bad := range [][]string{
			{"--flow", "op-login", "--user", "nobody"},
			{"--flow", "nope"},
			{"--flow", "op-login", "--designation", "authentication"},
			{"--flow", "op-login", "--ip", "not-an-ip"},
			{"--flow", "op-login", "--groups", "staff", "--user", "carol"},
		} {
			if out, err := runCLI(t, "", append(append([]string{"explain"}, addr...), bad...)...); err == nil {
				t.Errorf("explain %v succeeded:\n%s", bad, out)
			}
		}
	})

	t.Run("admin api", func(t *testing.T) {
		body := `{"flow": "op-login", "user": "bob", "ip": "192.0.2.1", "path": "/x?next=/y", "method": "GET",
			"host": "localhost:9080", "headers": {"x-team": "ops"}}`
		status, resp := adminDo(t, "POST", "/flowgate/explain", body, "application/json")
		if status != 200 {
			t.Fatalf("explain: %d %s", status, resp)
		}
		var x struct {
			Flow    string `json:"flow"`
			User    string `json:"user"`
			Request struct {
				Scheme   string `json:"scheme"`
				Host     string `json:"host"`
				Path     string `json:"path"`
				ClientIP string `json:"client_ip"`
			} `json:"request"`
			Stages []struct {
				Stage      string `json:"stage"`
				ReEvaluate string `json:"re_evaluate"`
				Verdict    string `json:"verdict"`
			} `json:"stages"`
			Plan    []string `json:"plan"`
			Outcome struct {
				Result string `json:"result"`
				At     string `json:"at"`
			} `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(resp), &x); err != nil {
			t.Fatalf("%v: %s", err, resp)
		}
		if x.Flow != "op-login" || x.User != "bob" || x.Request.Scheme != "http" || x.Request.Host != "localhost:9080" ||
			x.Request.Path != "/x" || x.Request.ClientIP != "192.0.2.1" || x.Outcome.Result != "denied" || x.Outcome.At != "stage op-deny" ||
			strings.Join(x.Plan, " ") != "op-id op-pw op-deny op-login-stage" {
			t.Fatalf("explanation: %+v\n%s", x, resp)
		}
		for _, s := range x.Stages {
			if s.Stage == "op-deny" && (s.ReEvaluate != "runs" || s.Verdict != "runs") {
				t.Fatalf("op-deny for bob: %+v", s)
			}
		}
		status, resp = adminDo(t, "POST", "/flowgate/explain", `{"designation": "authentication", "user": "alice", "signed_in": true}`, "application/json")
		if status != 200 || !strings.Contains(resp, `"chosen":"staff-first"`) {
			t.Fatalf("designation: %d %s", status, resp)
		}

		for _, tc := range []struct {
			name, body string
			status     int
			want       string
		}{
			{"unknown user", `{"flow": "op-login", "user": "nobody"}`, 404, `no user \"nobody\"`},
			{"unknown flow", `{"flow": "nope"}`, 404, `no flow \"nope\"`},
			{"flow and designation", `{"flow": "op-login", "designation": "authentication"}`, 400, "either a flow or a designation"},
			{"neither", `{}`, 400, "either a flow or a designation"},
			{"unknown designation", `{"designation": "nope"}`, 400, "designation"},
			{"bad ip", `{"flow": "op-login", "ip": "999.1.1.1"}`, 400, "not an IP address"},
			{"bad path", `{"flow": "op-login", "path": "x"}`, 400, "must start with /"},
			{"bad scheme", `{"flow": "op-login", "scheme": "ftp"}`, 400, "want http or https"},
			{"bad header", `{"flow": "op-login", "headers": {"a b": "c"}}`, 400, "header name"},
			{"signed in without a user", `{"flow": "op-login", "signed_in": true}`, 400, "signed_in needs a user"},
			{"unknown field", `{"flow": "op-login", "groups": ["staff"]}`, 400, "unknown field"},
			{"not JSON", `flow: op-login`, 400, "request body"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, resp := adminDo(t, "POST", "/flowgate/explain", tc.body, "application/json")
				if status != tc.status || !strings.Contains(resp, tc.want) {
					t.Fatalf("%d %s; want %d with %q", status, resp, tc.status, tc.want)
				}
			})
		}

		// Explaining started nothing: no session for anyone.
		for _, u := range []string{"alice", "bob"} {
			if status, resp := adminDo(t, "GET", "/flowgate/users/"+u+"/sessions", "", ""); status != 200 || strings.TrimSpace(resp) != "[]" {
				t.Fatalf("%s's sessions after explaining: %d %s", u, status, resp)
			}
		}
	})
}

func TestExplainOffline(t *testing.T) {
	dir := t.TempDir()
	seed := demoUsers(t, dir) // alice (staff), bob and the staff-only policy
	file := filepath.Join(dir, "op.yaml")
	if err := os.WriteFile(file, []byte(opLogin), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"seed user bob", []string{"--blueprint", seed, "--blueprint", file, "--flow", "op-login", "--user", "bob"},
			[]string{"op-deny: runs", "Outcome: denied at stage op-deny"}},
		{"seed user alice", []string{"--blueprint", seed, "--blueprint", file, "--flow", "op-login", "--user", "alice"},
			[]string{"op-deny: skipped", "as if the user were identified"}},
		{"synthetic staff user", []string{"--blueprint", file, "--flow", "op-login", "--user", "carol", "--groups", "ops,staff"},
			[]string{"for carol", "op-deny: skipped"}},
		{"synthetic user without groups", []string{"--blueprint", file, "--flow", "op-login", "--user", "dave", "--groups", ""},
			[]string{"op-deny: runs"}},
		{"designation", []string{"--blueprint", seed, "--blueprint", file, "--designation", "authentication"},
			[]string{"1. default-authentication (order 0): chosen", "2. op-login (order 50): not reached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"explain"}, tc.args...)...)
			if err != nil {
				t.Fatalf("explain: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	out, err := runCLI(t, "", "explain", "--blueprint", seed, "--blueprint", file, "--flow", "op-login", "--user", "bob", "--json")
	if err != nil || !json.Valid([]byte(out)) || !strings.Contains(out, `"result": "denied"`) {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	for _, bad := range [][]string{
		{"--blueprint", file, "--flow", "op-login", "--user", "carol"},                                       // no such seed user
		{"--blueprint", seed, "--blueprint", file, "--flow", "op-login", "--user", "alice", "--groups", "x"}, // a seed user
		{"--blueprint", filepath.Join(dir, "missing.yaml"), "--flow", "op-login"},
		{"--blueprint", file},
	} {
		if out, err := runCLI(t, "", append([]string{"explain"}, bad...)...); err == nil {
			t.Errorf("explain %v succeeded:\n%s", bad, out)
		}
	}
}
