package integration

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite golden files")

func adapt(t *testing.T, name, src string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": name})
	return out, err
}

// Caddyfile → JSON for both modules, against golden files (go test -update).
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no adapt cases")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, _ := os.ReadFile(f)
			out, err := adapt(t, f, string(src))
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, out, "", "\t")
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				os.WriteFile(golden, pretty.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted config differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// Mistakes in the Caddyfile come out of adapt with the file and line.
func TestAdaptErrorsNameLine(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown global option", "{\n\tflowgate {\n\t\tstorag bolt\n\t}\n}\n:80 {\n\tflowgate\n}\n", "Caddyfile:3"},
		{"bad storage", "{\n\tflowgate {\n\t\tstorage postgres\n\t}\n}\n", `unknown storage "postgres" (want bolt, memory or redis), at Caddyfile:3`},
		{"odd secret keys", "{\n\tflowgate {\n\t\tsecret_keys " + hashKey1 + "\n\t}\n}\n", "Caddyfile:3"},
		{"short secret key", "{\n\tflowgate {\n\t\tsecret_keys abc def\n\t}\n}\n", "64 hex characters"},
		{"unknown handler option", ":80 {\n\tflowgate {\n\t\tpolicyy x\n\t}\n}\n", `unknown flowgate option "policyy", at Caddyfile:3`},
		{"bad designation", ":80 {\n\tflowgate {\n\t\tflow signin x\n\t}\n}\n", `unknown designation "signin"`},
		{"bad prefix", ":80 {\n\tflowgate {\n\t\tprefix auth\n\t}\n}\n", "Caddyfile:3"},
		{"bad header name", ":80 {\n\tflowgate {\n\t\theader_user \"Remote User\"\n\t}\n}\n", `header_user: identity header "Remote User": not a valid header name ("-" sends none), at Caddyfile:3`},
		{"bad lifetime", "{\n\tflowgate {\n\t\tcookie {\n\t\t\tlifetime forever\n\t\t}\n\t}\n}\n", "Caddyfile:4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, "Caddyfile", tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A bad blueprint fails `caddy validate` (Provision) naming its file and line.
func TestValidateReportsBlueprintLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nflows:\n  - slug: x\n    designation: authentication\n    stages: [{stage: missing, order: 1}]\n"), 0o644)
	src := "{\n\tflowgate {\n\t\tstorage memory\n\t\tblueprints " + bad + "\n\t}\n}\n:9999 {\n\tflowgate\n}\n"
	out, err := adapt(t, "Caddyfile", src)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	err = caddy.Validate(&cfg)
	if err == nil || !strings.Contains(err.Error(), bad+`:3: flow x: stages[0]: unknown stage "missing"`) {
		t.Fatalf("validate: %v", err)
	}
}

// A JSON config with a header name that is no HTTP token fails `caddy validate`.
func TestValidateRejectsBadHeaderName(t *testing.T) {
	out, err := adapt(t, "Caddyfile", "{\n\tflowgate {\n\t\tstorage memory\n\t}\n}\n:9999 {\n\tflowgate {\n\t\theader_email X-Mail\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(bytes.Replace(out, []byte(`"X-Mail"`), []byte(`"X Mail"`), 1), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), `identity header "X Mail": not a valid header name`) {
		t.Fatalf("validate: %v", err)
	}
}

// FuzzCaddyfile: any content in the global flowgate block or the site directive
// adapts or fails with an error; it never panics.
func FuzzCaddyfile(f *testing.F) {
	for _, seed := range [][2]string{
		{"storage bolt /tmp/x.db", "prefix /auth"},
		{"storage redis redis://h:1 {\n prefix {x}:\n tls\n}", "flow authentication x"},
		{"cookie {\n lifetime 1h\n}\nsecret_keys " + hashKey1 + " " + blockKey1, "header_user X-U"},
		{"smtp {\n port 99999\n}", "policy"},
		{"branding {\n name\n}", "flow"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, global, site string) {
		src := "{\n\tflowgate {\n" + global + "\n\t}\n}\n:80 {\n\tflowgate {\n" + site + "\n\t}\n}\n"
		_, _, _ = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	})
}
