package blueprint_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/policies"
)

var update = flag.Bool("update", false, "rewrite golden files")

func newEngine(t testing.TB) *flowengine.Engine {
	e, err := flowengine.New(flowengine.Options{
		Store:  memory.New(nil),
		Stages: stages.Types(),
		Policies: func(m map[string]string) (flowengine.PolicyEvaluator, error) {
			s, err := policies.Compile(m)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	})
	if err != nil {
		panic(err)
	}
	return e
}

const good = `version: 1
policies:
  - name: staff-only
    rego: |
      package flowgate.staff_only
      import rego.v1
      default allow := false
      allow if "staff" in input.user.groups
stages:
  - name: id
    type: identification
    config: {user_fields: [username]}
  - name: login
    type: user_login
flows:
  - slug: auth
    name: Auth
    designation: authentication
    stages:
      - {stage: id, order: 10, policies: [{policy: staff-only}]}
      - {stage: login, order: 20}
`

// Every rule of the format, broken once: the error names file, line and entry,
// and nothing is applied.
func TestRejects(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"malformed yaml", "version: 1\nflows: [\n", "bad.yaml:"},
		{"not a mapping", "- 1\n- 2\n", "bad.yaml:1: a blueprint must be a mapping"},
		{"wrong version", "version: 2\n", "bad.yaml:1: version must be 1"},
		{"unknown top-level field", "version: 1\nflowz: []\n", `bad.yaml:2: unknown field "flowz"`},
		{"unknown flow field", strings.Replace(good, "    name: Auth\n", "    name: Auth\n    colour: red\n", 1), `bad.yaml:18: unknown field "colour" in flows[0]`},
		{"wrong type", strings.Replace(good, "{stage: login, order: 20}", "{stage: login, order: twenty}", 1), "bad.yaml:21: cannot unmarshal !!str `twenty` into int"},
		{"unknown designation", strings.Replace(good, "designation: authentication", "designation: signin", 1), `bad.yaml:16: flow auth: designation: unknown value "signin"`},
		{"unknown denied_action", strings.Replace(good, "    name: Auth\n", "    name: Auth\n    denied_action: explode\n", 1), `bad.yaml:16: flow auth: denied_action: unknown value "explode"`},
		{"unknown stage type", strings.Replace(good, "type: user_login", "type: user_logon", 1), `bad.yaml:13: stage login: type: unknown stage type "user_logon"`},
		{"unknown config key", strings.Replace(good, "{user_fields: [username]}", "{user_feilds: [username]}", 1), `bad.yaml:10: stage id: config: unknown config key "user_feilds"`},
		{"bad config value", strings.Replace(good, "{user_fields: [username]}", "{user_fields: [phone]}", 1), `bad.yaml:10: stage id: config: user_fields: unknown field "phone"`},
		{"dangling stage", strings.Replace(good, "{stage: login, order: 20}", "{stage: logout, order: 20}", 1), `bad.yaml:16: flow auth: stages[1]: unknown stage "logout"`},
		{"dangling policy", strings.Replace(good, "{policy: staff-only}", "{policy: staff}", 1), `bad.yaml:16: flow auth: stages[0].policies[0]: unknown policy "staff"`},
		{"two targets in a binding", strings.Replace(good, "{policy: staff-only}", "{policy: staff-only, group: staff}", 1), "exactly one of policy, group, user"},
		{"duplicate slug", good + "  - {slug: auth, designation: enrollment}\n", `bad.yaml:22: flow auth: defined twice in this file`},
		{"duplicate stage", strings.Replace(good, "  - name: login\n", "  - name: id\n    type: dummy\n  - name: login\n", 1), "stage id: defined twice"},
		{"auth flow without login", strings.Replace(good, "      - {stage: login, order: 20}\n", "", 1), "bad.yaml:16: flow auth: stages: an authentication flow must end in a user_login stage"},
		{"invalidation without logout", good + "  - {slug: out, designation: invalidation, stages: [{stage: id, order: 1}]}\n", "flow out: stages: an invalidation flow must contain a user_logout stage"},
		{"bad rego", strings.Replace(good, `allow if "staff" in input.user.groups`, `allow if "staff" in`, 1), "bad.yaml:9: policy staff-only: rego line 5:"},
		{"bad timeout", strings.Replace(good, "{policy: staff-only}", "{policy: staff-only, timeout: soon}", 1), `timeout: "soon" is not a positive duration`},
		{"bad slug", strings.Replace(good, "slug: auth", "slug: Auth Flow", 1), "slug: must be lower-case"},
		{"bad password hash", good + "users:\n  - {username: x, password_hash: plaintext}\n", "bad.yaml:23: user x: password_hash: neither argon2id"},
		{"placeholder password hash", good + "users:\n  - {username: x, password_hash: \"$2a$14$…\"}\n", "bad.yaml:23: user x: password_hash: bcrypt hash of 8 characters, want 60 (a placeholder?)"},
		{"authentik format", "version: 1\nentries:\n  - model: authentik_flows.flow\n", "bad.yaml:3: authentik_flows.flow (entry 1): a flow needs a slug"},
		{"alias", "version: 1\nmetadata: &m {name: x}\nx: *m\n", "aliases are not allowed"},
		{"two documents", "version: 1\n---\nversion: 1\n", "more than one document"},
		{"empty", "  \n", "file is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			err := apply(e, tc.doc)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if len(e.Config().Flows)+len(e.Config().Stages)+len(e.Config().Policies) != 0 {
				t.Fatal("part of a rejected blueprint was applied")
			}
		})
	}
}

func apply(e *flowengine.Engine, doc string) error {
	bp, err := blueprint.Parse("bad.yaml", []byte(doc))
	if err != nil {
		return err
	}
	return bp.Apply(context.Background(), e)
}

func TestSizeAndDepthLimits(t *testing.T) {
	big := "version: 1\n# " + strings.Repeat("x", blueprint.MaxSize) + "\n"
	if _, err := blueprint.Parse("big.yaml", []byte(big)); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("4 MiB limit: %v", err)
	}
	deep := `{"version": 1, "metadata": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}"
	if _, err := blueprint.Parse("deep.json", []byte(deep)); err == nil {
		t.Fatal("deep nesting accepted")
	}
}

func TestJSONSameShape(t *testing.T) {
	y, err := blueprint.Parse("a.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	j, err := blueprint.Convert("a.yaml", []byte(good), blueprint.JSON)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := blueprint.Parse("a.json", j)
	if err != nil {
		t.Fatalf("converted JSON does not parse: %v\n%s", err, j)
	}
	a, _ := blueprint.Export(y.Config, blueprint.YAML)
	b, _ := blueprint.Export(fromJSON.Config, blueprint.YAML)
	if !bytes.Equal(a, b) {
		t.Fatalf("YAML and JSON differ:\n%s\n%s", a, b)
	}
	// Unknown JSON keys are refused like YAML ones, with the line.
	_, err = blueprint.Parse("b.json", []byte("{\"version\": 1,\n \"flow\": []}"))
	if err == nil || !strings.Contains(err.Error(), `b.json:2: unknown field "flow"`) {
		t.Fatalf("unknown JSON key: %v", err)
	}
}

func TestImportIsIdempotentUpsert(t *testing.T) {
	e := newEngine(t)
	for i := 0; i < 2; i++ {
		if err := apply(e, good); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.Config().Flows); n != 1 {
		t.Fatalf("%d flows after importing twice", n)
	}
	changed := strings.Replace(good, "name: Auth", "name: Renamed", 1)
	if err := apply(e, changed); err != nil {
		t.Fatal(err)
	}
	f, _ := e.Flow("auth")
	if f.Name != "Renamed" {
		t.Fatal("upsert did not replace the flow")
	}
	// A second file can reference entries the first one defined.
	more := "version: 1\nflows:\n  - slug: second\n    designation: authentication\n    stages: [{stage: id, order: 1}, {stage: login, order: 2}]\n"
	if err := apply(e, more); err != nil {
		t.Fatal(err)
	}
}

// export → import → export is byte-identical, and matches the golden file.
func TestExportGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/roundtrip-input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []blueprint.Format{blueprint.YAML, blueprint.JSON} {
		e := newEngine(t)
		if err := apply(e, string(src)); err != nil {
			t.Fatal(err)
		}
		out, err := blueprint.Export(e.Config(), format)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "roundtrip-export."+string(format))
		if *update {
			os.WriteFile(golden, out, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("%s export differs from %s (run go test -update):\n%s", format, golden, out)
		}
		e2 := newEngine(t)
		bp, err := blueprint.Parse("export."+string(format), out)
		if err != nil {
			t.Fatal(err)
		}
		if err := bp.Apply(context.Background(), e2); err != nil {
			t.Fatal(err)
		}
		again, _ := blueprint.Export(e2.Config(), format)
		if !bytes.Equal(out, again) {
			t.Fatalf("import(export(x)) exports differently:\n%s\n---\n%s", out, again)
		}
	}
}

func TestExportOneFlowIsSelfContained(t *testing.T) {
	src, _ := os.ReadFile("testdata/roundtrip-input.yaml")
	e := newEngine(t)
	if err := apply(e, string(src)); err != nil {
		t.Fatal(err)
	}
	out, err := blueprint.Export(e.Config(), blueprint.YAML, "default-invalidation")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "identification") || !strings.Contains(string(out), "user_logout") {
		t.Fatalf("single-flow export:\n%s", out)
	}
	if err := apply(newEngine(t), string(out)); err != nil {
		t.Fatalf("single-flow export does not import on its own: %v", err)
	}
	if _, err := blueprint.Export(e.Config(), blueprint.YAML, "nope"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("unknown slug: %v", err)
	}
}

func TestDefaultsMatchExample(t *testing.T) {
	example, err := os.ReadFile("../../examples/blueprints/default-flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(example, blueprint.DefaultsYAML()) {
		t.Fatal("examples/blueprints/default-flows.yaml and the built-in defaults.yaml differ")
	}
	if err := blueprint.Defaults().Apply(context.Background(), newEngine(t)); err != nil {
		t.Fatal(err)
	}
}

// authentik's exports are converted (package authentik tests them in depth).
func TestAuthentikExportsConverted(t *testing.T) {
	files, _ := filepath.Glob("authentik/testdata/shared/*.yaml")
	if len(files) != 5 {
		t.Fatalf("authentik/testdata/shared holds %d exports, want 5", len(files))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		bp, err := blueprint.Parse(f, data)
		if err != nil || len(bp.Config.Flows) != 1 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"version":1,"flows":[{"slug":"x","designation":"enrollment"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bp, err := blueprint.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, blueprint.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		e := newEngine(t)
		_ = bp.Apply(context.Background(), e)
		if _, err := blueprint.Export(e.Config(), blueprint.YAML); err != nil {
			t.Fatal(err)
		}
	})
}
