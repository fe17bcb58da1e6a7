package authentik_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/blueprint/authentik"
	"github.com/flowgate/flowgate/policies"
)

// policyOf imports one policy entry and compiles its Rego.
func policyOf(t *testing.T, entry string) (*policies.Set, string, []blueprint.Warning) {
	t.Helper()
	bp, err := parseString(t, "version: 1\nentries:\n"+entry)
	if err != nil {
		t.Fatal(err)
	}
	if len(bp.Config.Policies) != 1 {
		t.Fatalf("policies = %+v", bp.Config.Policies)
	}
	p := bp.Config.Policies[0]
	set, err := policies.Compile(map[string]string{p.Name: p.Rego})
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Rego)
	}
	return set, p.Name, bp.Warnings
}

func expressionEntry(src string) string {
	var b strings.Builder
	b.WriteString("  - model: authentik_policies_expression.expressionpolicy\n    identifiers: {name: p}\n    attrs:\n      expression: |\n")
	for _, l := range strings.Split(src, "\n") {
		b.WriteString("        " + l + "\n")
	}
	return b.String()
}

func user(methods ...any) map[string]any {
	if methods == nil {
		methods = []any{}
	}
	return map[string]any{"authenticated": false, "groups": []any{}, "attributes": map[string]any{}, "auth_methods": methods}
}

// TestExpressionTable: one case per translated expression, each with inputs
// that pass and that fail.
func TestExpressionTable(t *testing.T) {
	cases := map[string][]struct {
		input map[string]any
		allow bool
	}{
		"password-stage-optional": {
			{map[string]any{"user": user(), "context": map[string]any{}}, true},
			{map[string]any{"user": user("webauthn"), "context": map[string]any{}}, false},
		},
		"is-restored": {
			{map[string]any{"user": user(), "context": map[string]any{"is_restored": true}}, true},
			{map[string]any{"user": user(), "context": map[string]any{}}, false},
		},
		"no-username-from-source": {
			{map[string]any{"user": user(), "context": map[string]any{"prompt_data": map[string]any{"email": "a@b"}}}, true},
			{map[string]any{"user": user(), "context": map[string]any{}}, true},
			{map[string]any{"user": user(), "context": map[string]any{"prompt_data": map[string]any{"username": "x"}}}, false},
		},
		"is-sso-flow": {
			{map[string]any{"user": user(), "context": map[string]any{}}, false},
		},
		"not-app-password": {
			{map[string]any{"user": user(), "context": map[string]any{}}, true},
			{map[string]any{"user": user(), "context": map[string]any{"auth_method": "app_password"}}, false},
		},
	}
	if len(cases) != len(authentik.Expressions) {
		t.Fatalf("%d cases for %d expressions", len(cases), len(authentik.Expressions))
	}
	for _, x := range authentik.Expressions {
		t.Run(x.Name, func(t *testing.T) {
			// Reformatted the way authors do (quotes, indentation), it still matches.
			src := strings.ReplaceAll(x.Python, `"`, `'`)
			set, name, ws := policyOf(t, expressionEntry(src))
			if len(ws) != 0 {
				t.Errorf("warnings = %v", ws)
			}
			for i, tc := range cases[x.Name] {
				allow, _, err := set.Evaluate(context.Background(), name, tc.input)
				if err != nil || allow != tc.allow {
					t.Errorf("case %d: allow = %v, %v; want %v", i, allow, err, tc.allow)
				}
			}
		})
	}
}

// TestUntranslatedExpression: any other expression errors (fail closed), keeps
// its Python as a comment and is warned about by name.
func TestUntranslatedExpression(t *testing.T) {
	set, name, ws := policyOf(t, expressionEntry("return request.user.username == 'akadmin'"))
	if len(ws) != 1 || ws[0].Kind != string(authentik.WarnPython) || !strings.Contains(ws[0].Entry, `expressionpolicy "p"`) {
		t.Fatalf("warnings = %v", ws)
	}
	if _, _, err := set.Evaluate(context.Background(), name, map[string]any{}); err == nil {
		t.Fatal("an untranslated expression evaluated without an error")
	}
	bp, _ := parseString(t, "version: 1\nentries:\n"+expressionEntry("return request.user.username == 'akadmin'"))
	if !strings.Contains(bp.Config.Policies[0].Rego, "#     return request.user.username == 'akadmin'") {
		t.Errorf("the Python is not kept:\n%s", bp.Config.Policies[0].Rego)
	}
}

func TestOtherPolicyFailsClosed(t *testing.T) {
	set, name, ws := policyOf(t, `  - model: authentik_policies_geoip.geoippolicy
    identifiers: {name: geo}
    attrs: {countries: [DE]}
`)
	if len(ws) != 1 || ws[0].Kind != string(authentik.WarnPolicy) {
		t.Fatalf("warnings = %v", ws)
	}
	if _, _, err := set.Evaluate(context.Background(), name, map[string]any{}); err == nil {
		t.Fatal("an untranslated policy evaluated without an error")
	}
}

func TestReputationPolicy(t *testing.T) {
	for _, tc := range []struct {
		checks   string
		ip, user int
		allow    bool
	}{
		{"check_ip: true, check_username: true", 0, 0, false},
		{"check_ip: true, check_username: true", -5, 0, true},
		{"check_ip: true, check_username: true", 0, -5, true},
		{"check_ip: true, check_username: false", 0, -7, false},
		{"check_ip: false, check_username: true", 0, -7, true},
		{"check_ip: false, check_username: false", -9, -9, false},
	} {
		t.Run(fmt.Sprintf("%s/%d/%d", tc.checks, tc.ip, tc.user), func(t *testing.T) {
			set, name, ws := policyOf(t, fmt.Sprintf(`  - model: authentik_policies_reputation.reputationpolicy
    identifiers: {name: rep}
    attrs: {%s, threshold: -5}
`, tc.checks))
			if len(ws) != 0 {
				t.Errorf("warnings = %v", ws)
			}
			in := map[string]any{"reputation": map[string]any{"ip": tc.ip, "username": tc.user}}
			allow, _, err := set.Evaluate(context.Background(), name, in)
			if err != nil || allow != tc.allow {
				t.Errorf("allow = %v, %v; want %v", allow, err, tc.allow)
			}
		})
	}
}

func TestPasswordPolicy(t *testing.T) {
	set, name, ws := policyOf(t, `  - model: authentik_policies_password.passwordpolicy
    identifiers: {name: pw}
    attrs:
      length_min: 10
      amount_uppercase: 1
      amount_digits: 2
      amount_symbols: 1
      check_zxcvbn: true
      zxcvbn_score_threshold: 2
      error_message: Too simple.
      check_have_i_been_pwned: true
`)
	if len(ws) != 1 || !strings.Contains(ws[0].Msg, "check_have_i_been_pwned") {
		t.Errorf("warnings = %v", ws)
	}
	for _, tc := range []struct {
		pw    string
		where string
		allow bool
	}{
		{"", "prompt", true},
		{"short", "prompt", false},
		{"longenoughbutweak", "prompt", false},
		{"Correct-Horse-42-Battery", "prompt", true},
		{"Correct-Horse-42-Battery", "context", true},
		{"password1234", "context", false},
	} {
		in := map[string]any{"context": map[string]any{}}
		if tc.where == "prompt" {
			in["prompt"] = map[string]any{"password": tc.pw}
		} else {
			in["context"] = map[string]any{"prompt_data": map[string]any{"password": tc.pw}}
		}
		allow, msgs, err := set.Evaluate(context.Background(), name, in)
		if err != nil || allow != tc.allow {
			t.Errorf("%q in %s: allow = %v (%v), %v; want %v", tc.pw, tc.where, allow, msgs, err, tc.allow)
		}
		if !allow && len(msgs) == 0 {
			t.Errorf("%q: refused without a message", tc.pw)
		}
	}
}

func TestDummyPolicy(t *testing.T) {
	set, name, _ := policyOf(t, `  - model: authentik_policies_dummy.dummypolicy
    identifiers: {name: d}
    attrs: {result: true}
`)
	if allow, _, err := set.Evaluate(context.Background(), name, map[string]any{}); err != nil || !allow {
		t.Errorf("allow = %v, %v", allow, err)
	}
}

func TestPackageName(t *testing.T) {
	for in, want := range map[string]string{
		"default-authentication-flow-password-stage": "flowgate.authentik.default_authentication_flow_password_stage",
		"Change your password":                       "flowgate.authentik.change_your_password",
		"1st":                                        "flowgate.authentik.p_1st",
		"default":                                    "flowgate.authentik.p_default",
	} {
		if got := authentik.PackageName(in); got != want {
			t.Errorf("PackageName(%q) = %q, want %q", in, got, want)
		}
	}
}
