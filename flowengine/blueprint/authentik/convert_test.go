package authentik_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

func newEngine(t testing.TB) *flowengine.Engine {
	t.Helper()
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
		t.Fatal(err)
	}
	return e
}

// files are every authentik file the importer is tested with: the shared
// exports and this package's own examples.
func files(t *testing.T) []string {
	t.Helper()
	shared, _ := filepath.Glob("testdata/shared/*.yaml")
	own, _ := filepath.Glob("testdata/*.yaml")
	js, _ := filepath.Glob("testdata/*.json")
	all := append(append(shared, own...), js...)
	if len(all) < 5 {
		t.Fatalf("test data not found (got %v)", all)
	}
	return all
}

// TestImportAndConvert: every file imports into an engine, twice without a
// change, and its conversion re-imports to the same flows.
func TestImportAndConvert(t *testing.T) {
	for _, f := range files(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			bp, err := blueprint.Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			e := newEngine(t)
			if err := bp.Apply(ctx, e); err != nil {
				t.Fatal(err)
			}
			first, err := blueprint.Export(e.Config(), blueprint.YAML)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := blueprint.Parse(f, data)
			if err := again.Apply(ctx, e); err != nil {
				t.Fatal(err)
			}
			second, _ := blueprint.Export(e.Config(), blueprint.YAML)
			if !bytes.Equal(first, second) {
				t.Errorf("a second import changed the configuration:\n%s\n---\n%s", first, second)
			}
			for _, to := range []blueprint.Format{blueprint.YAML, blueprint.JSON} {
				conv, err := blueprint.Convert(f, data, to)
				if err != nil {
					t.Fatal(err)
				}
				nb, err := blueprint.Parse("converted."+string(to), conv)
				if err != nil {
					t.Fatalf("converted %s does not parse: %v\n%s", to, err, conv)
				}
				if len(nb.Warnings) != 0 {
					t.Errorf("converted %s has warnings: %v", to, nb.Warnings)
				}
				e2 := newEngine(t)
				if err := nb.Apply(ctx, e2); err != nil {
					t.Fatal(err)
				}
				got, _ := blueprint.Export(e2.Config(), blueprint.YAML)
				if !bytes.Equal(first, got) {
					t.Errorf("converted %s imports differently:\n%s\n---\n%s", to, first, got)
				}
			}
		})
	}
}

func warnings(t *testing.T, file string) []blueprint.Warning {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return bp.Warnings
}

// TestWarnings asserts each file's warnings by kind and the entry they name.
func TestWarnings(t *testing.T) {
	shared := filepath.Dir(files(t)[0])
	for _, tc := range []struct {
		file string
		want []string // "kind entry-substring"
	}{
		{filepath.Join(shared, "flow-default-authentication-flow.yaml"), []string{
			"left-out authentik_blueprints.metaapplyblueprint",
		}},
		{filepath.Join(shared, "flow-default-invalidation-flow.yaml"), nil},
		{filepath.Join(shared, "flow-password-change.yaml"), nil},
		{filepath.Join(shared, "flows-enrollment-2-stage.yaml"), nil},
		{"testdata/flows-login-conditional-captcha.yaml", []string{
			`unknown-setting authentik_stages_identification.identificationstage "default-authentication-identification"`,
		}},
		{"testdata/flows-recovery-email-verification.yaml", []string{
			`unknown-setting authentik_stages_email.emailstage "default-recovery-email"`,
		}},
		{"testdata/flows-login-2fa.yaml", []string{
			`unknown-setting authentik_stages_identification.identificationstage "default-authentication-identification"`,
		}},
		{"testdata/flow-default-source-enrollment.yaml", nil},
		{"testdata/flow-default-user-settings-flow.yaml", []string{
			`unknown-setting authentik_stages_prompt.prompt "default-user-settings-field-username"`,
			`unknown-setting authentik_stages_prompt.prompt "default-user-settings-field-name"`,
			`unknown-setting authentik_stages_prompt.prompt "default-user-settings-field-email"`,
			`unknown-setting authentik_stages_prompt.prompt "default-user-settings-field-locale"`,
			`unknown-setting authentik_stages_prompt.prompt "default-user-settings-field-locale"`,
			`python-policy authentik_policies_expression.expressionpolicy "default-user-settings-authorization"`,
		}},
		{"testdata/handmade-pk-export.json", []string{
			`unknown-setting authentik_flows.flow "pk-login"`,
			`unknown-setting authentik_policies_dummy.dummypolicy "pk-dummy"`,
			`left-out authentik_core.application "grafana"`,
		}},
		{"testdata/handmade-tags.yaml", []string{
			`env authentik_stages_password.passwordstage "tags-password"`,
			`condition-false authentik_stages_deny.denystage "tags-never"`,
			`left-out authentik_sources_oauth.oauthsource "github"`,
		}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			got := warnings(t, tc.file)
			var names []string
			for _, w := range got {
				names = append(names, w.Kind+" "+w.Entry)
			}
			if len(names) != len(tc.want) {
				t.Fatalf("warnings = %q, want %q", got, tc.want)
			}
			for i := range names {
				if !strings.HasPrefix(names[i], tc.want[i]) {
					t.Errorf("warning %d = %q, want %q", i, names[i], tc.want[i])
				}
				if got[i].Line == 0 || got[i].File != tc.file {
					t.Errorf("warning %d has no file and line: %v", i, got[i])
				}
			}
		})
	}
}

func TestEmailSettingsWarning(t *testing.T) {
	ws := warnings(t, "testdata/flows-recovery-email-verification.yaml")
	if len(ws) != 1 || !strings.Contains(ws[0].Msg, "from_address, host, port, template, timeout, use_ssl, use_tls, username") {
		t.Fatalf("warnings = %v", ws)
	}
	if !strings.Contains(ws[0].String(), "flows-recovery-email-verification.yaml:") {
		t.Errorf("String() = %q", ws[0])
	}
}

func parseString(t *testing.T, src string) (*blueprint.Blueprint, error) {
	t.Helper()
	return blueprint.Parse("test.yaml", []byte(src))
}

const header = `version: 1
entries:
  - model: authentik_flows.flow
    id: flow
    identifiers: {slug: login}
    attrs: {name: Login, designation: authentication}
  - model: authentik_stages_user_login.userloginstage
    id: login
    identifiers: {name: login}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf login, order: 100}
`

// TestRejected: what flowgate needs but cannot build rejects the file with
// file, line and entry.
func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"stage flowgate lacks", `
  - model: authentik_stages_authenticator_duo.authenticatorduostage
    id: duo
    identifiers: {name: duo}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf duo, order: 20}
`, `test.yaml:17: authentik_flows.flowstagebinding (entry 5): stage: flowgate has no stage like authentik_stages_authenticator_duo.authenticatorduostage "duo"`},
		{"unknown id", `
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf nope, order: 20}
`, `test.yaml:14: authentik_flows.flowstagebinding (entry 4): !KeyOf nope: no entry in this file has id "nope"`},
		{"binding to a flow elsewhere", `
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !Find [authentik_flows.flow, [slug, other]], stage: !KeyOf login, order: 20}
`, `test.yaml:14: authentik_flows.flowstagebinding (entry 4): target "other" is not a flow of this file`},
		{"unsupported tag", `
  - model: authentik_stages_deny.denystage
    identifiers: {name: !File /etc/passwd}
`, `test.yaml:14: authentik_stages_deny.denystage (entry 4): YAML tag !File is not supported`},
		{"prompt elsewhere", `
  - model: authentik_stages_prompt.promptstage
    identifiers: {name: p}
    attrs: {fields: [!Find [authentik_stages_prompt.prompt, [name, x]]]}
`, `authentik_stages_prompt.promptstage "p": fields: x is not a prompt`},
		{"only device classes flowgate lacks", `
  - model: authentik_stages_authenticator_validate.authenticatorvalidatestage
    identifiers: {name: v}
    attrs: {device_classes: [duo, sms]}
`, `device_classes: none that flowgate has (totp, static, webauthn)`},
		{"bad state", `
  - model: authentik_stages_deny.denystage
    identifiers: {name: d}
    state: maybe
`, `state: unknown value "maybe"`},
		{"engine refuses config", `
  - model: authentik_stages_consent.consentstage
    id: c
    identifiers: {name: c}
    attrs: {mode: sometimes}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf c, order: 20}
`, `test.yaml:13: stage c: config`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bp, err := parseString(t, header+tc.extra)
			if err == nil {
				err = bp.Apply(context.Background(), newEngine(t))
			}
			if err == nil || !errors.Is(err, blueprint.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAbsentAndCase(t *testing.T) {
	bp, err := parseString(t, header+`
  - model: AUTHENTIK_FLOWS.FLOW
    identifiers: {slug: old-flow}
    state: absent
  - model: authentik_Stages_Deny.DenyStage
    identifiers: {name: old-deny}
    state: absent
  - model: authentik_policies_expression.expressionpolicy
    identifiers: {name: old-policy}
    state: absent
`)
	if err != nil {
		t.Fatal(err)
	}
	rm := bp.Remove
	if len(rm.Flows) != 1 || rm.Flows[0] != "old-flow" || len(rm.Stages) != 1 || rm.Stages[0] != "old-deny" ||
		len(rm.Policies) != 1 || rm.Policies[0] != "old-policy" {
		t.Fatalf("Remove = %+v", rm)
	}
}

func TestTags(t *testing.T) {
	data, _ := os.ReadFile("testdata/handmade-tags.yaml")
	bp, err := blueprint.Parse("handmade-tags.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var flow flowengine.Flow
	for _, f := range bp.Config.Flows {
		if f.Slug == "tags-login" {
			flow = f
		}
	}
	if flow.Name != "Example login" || flow.Title != "Strict sign-in" {
		t.Errorf("flow = %q / %q", flow.Name, flow.Title)
	}
	st := map[string]flowengine.StageDef{}
	for _, s := range bp.Config.Stages {
		st[s.Name] = s
	}
	id := st["tags-identification"].Config
	if id["pretend_user_exists"] != true || id["enrollment_flow"] != "some-enrollment" {
		t.Errorf("identification config = %v", id)
	}
	if st["tags-password"].Config["failed_attempts_before_cancel"] != float64(3) {
		t.Errorf("password config = %v", st["tags-password"].Config)
	}
	if _, ok := st["tags-never"]; ok {
		t.Error("an entry whose conditions are false was imported")
	}
	if len(bp.Remove.Stages) != 1 || bp.Remove.Stages[0] != "tags-gone" {
		t.Errorf("Remove = %+v", bp.Remove)
	}
	if len(flow.Stages) != 3 || flow.Stages[0].Stage != "tags-identification" {
		t.Errorf("stages = %+v", flow.Stages)
	}
}

// TestIdentificationAsksPassword: a password (or captcha) stage that
// authentik asks on the identification page is bound right after it, never
// dropped.
func TestIdentificationAsksPassword(t *testing.T) {
	bp, err := parseString(t, `version: 1
entries:
  - {model: authentik_flows.flow, id: flow, identifiers: {slug: login}, attrs: {designation: authentication}}
  - {model: authentik_stages_password.passwordstage, id: pw, identifiers: {name: pw}}
  - {model: authentik_stages_captcha.captchastage, id: cap, identifiers: {name: cap}, attrs: {public_key: k, private_key: s}}
  - model: authentik_stages_identification.identificationstage
    id: ident
    identifiers: {name: ident}
    attrs: {password_stage: !KeyOf pw, captcha_stage: !KeyOf cap}
  - {model: authentik_stages_user_login.userloginstage, id: login, identifiers: {name: login}}
  - {model: authentik_flows.flowstagebinding, identifiers: {target: !KeyOf flow, stage: !KeyOf ident, order: 10}}
  - {model: authentik_flows.flowstagebinding, identifiers: {target: !KeyOf flow, stage: !KeyOf login, order: 100}}
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sb := range bp.Config.Flows[0].Stages {
		got = append(got, fmt.Sprintf("%s@%d", sb.Stage, sb.Order))
	}
	if strings.Join(got, " ") != "ident@10 pw@10 cap@10 login@100" {
		t.Fatalf("stages = %v", got)
	}
	if len(bp.Warnings) != 2 || !strings.Contains(bp.Warnings[0].Msg, "password_stage") {
		t.Errorf("warnings = %v", bp.Warnings)
	}
	if err := bp.Apply(context.Background(), newEngine(t)); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryExample: a binding removed by state: absent is left out, the
// one kept carries the translated policy, and the email stage's token_expiry
// (minutes in older exports) carries over.
func TestRecoveryExample(t *testing.T) {
	data, _ := os.ReadFile("testdata/flows-recovery-email-verification.yaml")
	bp, err := blueprint.Parse("recovery.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	f := bp.Config.Flows[0]
	var got []string
	for _, sb := range f.Stages {
		got = append(got, fmt.Sprintf("%s@%d/%d/%v/%v", sb.Stage, sb.Order, len(sb.Policies), sb.EvaluateOnPlan, sb.ReEvaluatePolicies))
	}
	want := "default-recovery-identification@10/1/true/true default-recovery-email@20/0/true/true " +
		"Change your password@30/0/true/false default-recovery-user-write@40/0/true/false default-recovery-user-login@100/0/true/false"
	if strings.Join(got, " ") != want {
		t.Fatalf("stages:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	for _, s := range bp.Config.Stages {
		if s.Name == "default-recovery-email" && (s.Config["token_expiry"] != "minutes=30" || s.Config["activate_user_on_success"] != true) {
			t.Errorf("email config = %v", s.Config)
		}
	}
}

func TestUnusedPromptAndSecretWarned(t *testing.T) {
	bp, err := parseString(t, header+`
  - model: authentik_stages_prompt.prompt
    identifiers: {name: lonely}
    attrs: {field_key: x, type: text}
  - model: authentik_crypto_secrets.secret
    identifiers: {name: key}
    attrs: {value: s3cret}
`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, w := range bp.Warnings {
		kinds = append(kinds, w.Kind+" "+w.Entry)
	}
	if strings.Join(kinds, "|") != `left-out authentik_stages_prompt.prompt "lonely"|left-out authentik_crypto_secrets.secret "key"` {
		t.Fatalf("warnings = %v", bp.Warnings)
	}
}
