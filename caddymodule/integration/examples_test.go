package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/policies"
)

const repoRoot = "../.."

// Every example blueprint loads on its own engine.
func TestExampleBlueprintsLoad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "blueprints", "*.yaml"))
	if len(files) != 4 {
		t.Fatalf("examples/blueprints has %d .yaml files, want 4 (default-flows, demo-user, mfa, self-service)", len(files))
	}
	// Not loaded by the example Caddyfile (it needs smtp), but it must load too.
	files = append(files, filepath.Join(repoRoot, "examples", "blueprints", "self-service-mail.yaml.example"))
	for _, f := range files {
		e, err := flowengine.New(flowengine.Options{Store: memory.New(nil), Stages: stages.Types(),
			Policies: func(m map[string]string) (flowengine.PolicyEvaluator, error) {
				s, err := policies.Compile(m)
				if err != nil {
					return nil, err
				}
				return s, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		set, err := blueprint.ReadPaths(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Apply(context.Background(), e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// The example Caddyfile runs: a newcomer signs in as demo and the upstream shows
// the identity headers. Run with the admin port and storage moved for the test.
func TestExampleCaddyfileServesDemo(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "examples", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, "examples/Caddyfile", string(src))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(out, &cfg)
	cfg["admin"] = map[string]any{"listen": "localhost:2999", "config": map[string]any{"persist": false}}
	apps := cfg["apps"].(map[string]any)
	fg := apps["flowgate"].(map[string]any)
	fg["storage"] = map[string]any{"backend": "bolt", "path": filepath.Join(t.TempDir(), "demo.db")}
	abs, _ := filepath.Abs(filepath.Join(repoRoot, "examples", "blueprints"))
	fg["blueprints"] = []string{abs}
	raw, _ := json.Marshal(cfg)

	tc := newTester(t)
	tc.InitServer(string(raw), "json")
	tc.Client.Timeout = 60 * time.Second // a real argon2id hash, under -race
	const site = "http://localhost:8080"
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", site+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := tc.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := readAll(resp)
		return resp.StatusCode, b
	}
	// The caddytest client follows redirects with its cookie jar, like a browser.
	status, page := get("/")
	if status != 200 || !strings.Contains(page, `name="uid_field"`) {
		t.Fatalf("first visit: %d, want the sign-in page\n%s", status, page)
	}
	token := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)[1]
	post := func(kv ...string) (int, string) {
		resp, err := tc.Client.PostForm(site+"/.flowgate/flows/default-authentication/", map[string][]string{"csrf_token": {token}, kv[0]: {kv[1]}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := readAll(resp)
		return resp.StatusCode, b
	}
	status, page = post("uid_field", "demo")
	// The token changes with every answer: take the password page's.
	token = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)[1]
	status, page = post("password", "flowgate-demo")
	if status != 200 || !strings.Contains(page, "<td>demo</td>") || !strings.Contains(page, "<td>demo@example.com</td>") {
		t.Fatalf("after sign-in: %d, want the upstream page with identity headers\n%s", status, page)
	}
}

func readAll(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
