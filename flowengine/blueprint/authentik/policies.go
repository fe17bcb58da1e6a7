package authentik

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Expression is one Python expression policy from authentik's own shipped
// blueprints with its Rego translation. The import recognises these (compared
// without comments, blank lines, indentation or quote style); any other
// expression becomes a policy that errors.
type Expression struct {
	Name   string // what it checks, for documentation and tests
	Python string // as authentik ships it
	Rego   string // the rules, after the package and import lines
}

// Expressions is the translation table.
var Expressions = []Expression{
	{
		// blueprints/default/flow-default-authentication-flow.yaml: skip the
		// password stage for a user already authenticated another way (in
		// authentik a source or passkey sets a backend on the pending user;
		// in flowgate that is a recorded auth method in this flow).
		Name: "password-stage-optional",
		Python: `flow_plan = request.context.get("flow_plan")
if not flow_plan:
    return True
# If the user does not have a backend attached to it, they haven't
# been authenticated yet and we need the password stage
return not hasattr(flow_plan.context.get("pending_user"), "backend")`,
		Rego: `default allow := false

allow if count(input.user.auth_methods) == 0
`,
	},
	{
		// blueprints/example/flows-recovery-email-verification.yaml
		Name:   "is-restored",
		Python: `return request.context.get('is_restored', False)`,
		Rego: `default allow := false

allow if object.get(input.context, "is_restored", false) == true
`,
	},
	{
		// blueprints/default/flow-default-source-enrollment.yaml
		Name: "no-username-from-source",
		Python: `# Check if we''ve not been given a username by the external IdP
# and trigger the enrollment flow
return 'username' not in context.get('prompt_data', {})`,
		Rego: `default allow := false

allow if not "username" in object.keys(object.get(input.context, "prompt_data", {}))
`,
	},
	{
		// blueprints/default/flow-default-source-{authentication,enrollment}.yaml:
		// flowgate has no SSO sources, so a flow never continues one.
		Name: "is-sso-flow",
		Python: `# This policy ensures that this flow can only be used when the user
# is in a SSO Flow (meaning they come from an external IdP)
return ak_is_sso_flow`,
		Rego: `# flowgate has no SSO sources: no flow is an SSO flow.
default allow := false
`,
	},
	{
		// blueprints/example/flows-login-2fa.yaml
		Name:   "not-app-password",
		Python: `return context.get("auth_method") != "app_password"`,
		Rego: `default allow := false

allow if object.get(input.context, "auth_method", "") != "app_password"
`,
	},
}

// normalizePython reduces an expression to what decides its meaning here:
// no comments, blank lines or indentation, one quote style, single spaces.
func normalizePython(src string) string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.ReplaceAll(line, "'", `"`)
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	return strings.Join(out, "\n")
}

// translateExpression finds an expression in the table.
func translateExpression(src string) (Expression, bool) {
	n := normalizePython(src)
	for _, x := range Expressions {
		if normalizePython(x.Python) == n {
			return x, true
		}
	}
	return Expression{}, false
}

var regoKeywords = map[string]bool{
	"as": true, "default": true, "else": true, "every": true, "false": true, "if": true, "import": true,
	"in": true, "not": true, "null": true, "package": true, "some": true, "true": true, "with": true,
	"contains": true, "data": true, "input": true,
}

// PackageName is the Rego package of an imported policy.
func PackageName(policy string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(policy) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s[0] >= '0' && s[0] <= '9' || regoKeywords[s] {
		s = "p_" + s
	}
	return "flowgate.authentik." + s
}

// maxKeptSource bounds the Python kept as a comment, well inside the Rego
// module size limit.
const maxKeptSource = 16 << 10

func module(name, header, rules string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n\nimport rego.v1\n\n", PackageName(name))
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	b.WriteString("\n" + rules)
	return b.String()
}

func quote(s string) string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

// failing is a module whose evaluation always errors (a built-in error is an
// error in flowgate's strict evaluation), so each binding's failure_result
// decides and a binding without one stops the flow: fail closed.
func failing(name, what, source string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Imported from authentik: %s %q, which flowgate cannot run.\n", what, name)
	b.WriteString("Evaluating it always fails, so each binding's failure_result decides\n")
	b.WriteString("(a binding without one stops the flow). Rewrite it in Rego.\n")
	if source != "" {
		if len(source) > maxKeptSource {
			source = source[:maxKeptSource] + "\n… (cut)"
		}
		b.WriteString("\nThe original:\n\n")
		for _, l := range strings.Split(strings.TrimRight(source, "\n"), "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	rules := "default allow := false\n\nallow if to_number(" + quote("authentik policy "+name+" cannot run in flowgate") + ") == 0\n"
	return module(name, b.String(), rules)
}

// policyRego builds the Rego module of a policy entry.
func (c *converter) policyRego(e *entry) string {
	switch e.stype {
	case "expression":
		src, _ := e.fields["expression"].(string)
		if x, ok := translateExpression(src); ok {
			return module(e.name, fmt.Sprintf("Imported from authentik: expression policy %q, translated (%s).\nThe original:\n\n%s", e.name, x.Name, indent(src)), x.Rego)
		}
		c.warn(e, e.lineOf("expression"), WarnPython,
			"a Python expression cannot run in flowgate; imported as a policy that errors, so each binding's failure_result decides (fail closed without one); rewrite it in Rego")
		return failing(e.name, "expression policy", src)
	case "reputation":
		return c.reputationRego(e)
	case "password":
		return c.passwordRego(e)
	case "dummy":
		c.leftOut(e, "result")
		result, _ := e.fields["result"].(bool)
		return module(e.name, fmt.Sprintf("Imported from authentik: dummy policy %q.", e.name),
			fmt.Sprintf("default allow := %t\n", result))
	}
	c.warn(e, e.line, WarnPolicy,
		"flowgate has no counterpart for this policy type; imported as a policy that errors, so each binding's failure_result decides (fail closed without one)")
	return failing(e.name, e.model, "")
}

func indent(src string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(src, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// leftOut warns about the settings of a policy entry other than keep.
func (c *converter) leftOut(e *entry, keep ...string) {
	known := map[string]bool{"execution_logging": true}
	for _, k := range keep {
		known[k] = true
	}
	var left []string
	for _, k := range sortedKeys(e.fields) {
		if !known[k] && !bookkeeping[k] {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		c.warn(e, e.lineOf(left[0]), WarnSetting, "settings left out, flowgate has no counterpart: "+strings.Join(left, ", "))
	}
}

func boolField(e *entry, key string, def bool) bool {
	if b, ok := e.fields[key].(bool); ok {
		return b
	}
	return def
}

func intField(e *entry, key string, def int) int {
	switch v := e.fields[key].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return def
}

// reputationRego: authentik sums the scores of the client IP and the username
// and passes when the sum is at most the threshold. flowgate keeps one score
// per IP and per account (input.reputation); with both checks the lower
// counts, which is authentik's sum for the usual case of one client trying
// one account.
func (c *converter) reputationRego(e *entry) string {
	c.leftOut(e, "check_ip", "check_username", "threshold")
	threshold := intField(e, "threshold", -5)
	var rules strings.Builder
	rules.WriteString("reputation := object.get(input, \"reputation\", {})\n\n")
	checks := 0
	for _, k := range []string{"ip", "username"} {
		if boolField(e, "check_"+k, true) {
			fmt.Fprintf(&rules, "scores contains object.get(reputation, %q, 0)\n\n", k)
			checks++
		}
	}
	rules.WriteString("default allow := false\n")
	if checks > 0 {
		fmt.Fprintf(&rules, "\nallow if min(scores) <= %d\n", threshold)
	}
	return module(e.name, fmt.Sprintf("Imported from authentik: reputation policy %q.\nPasses when the client's or the account's score is at most %d\n(scores fall with failed logins and rise with successful ones).", e.name, threshold), rules.String())
}

// defaultSymbols is authentik's default symbol_charset.
const defaultSymbols = "!\\\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ "

// passwordRego: authentik's static rules and zxcvbn check, on the answer
// under validation (a prompt's validation_policies) or on prompt_data (a
// binding). Like authentik, a request without a password passes.
func (c *converter) passwordRego(e *entry) string {
	c.leftOut(e, "password_field", "amount_digits", "amount_uppercase", "amount_lowercase", "amount_symbols",
		"length_min", "symbol_charset", "error_message", "check_static_rules", "check_zxcvbn",
		"zxcvbn_score_threshold", "check_have_i_been_pwned", "hibp_allowed_count")
	if boolField(e, "check_have_i_been_pwned", false) {
		c.warn(e, e.lineOf("check_have_i_been_pwned"), WarnSetting, "check_have_i_been_pwned left out: flowgate sends no password hashes to third parties")
	}
	field, _ := e.fields["password_field"].(string)
	if field == "" {
		field = "password"
	}
	msg, _ := e.fields["error_message"].(string)
	orMsg := func(def string) string {
		if msg != "" {
			return quote(msg)
		}
		return quote(def)
	}
	var r strings.Builder
	fmt.Fprintf(&r, "field := %s\n\n", quote(field))
	r.WriteString("prompt := object.get(input, \"prompt\", {})\n\n")
	r.WriteString("prompt_data := object.get(object.get(input, \"context\", {}), \"prompt_data\", {})\n\n")
	r.WriteString("password := object.get(prompt, field, object.get(prompt_data, field, \"\"))\n\n")
	r.WriteString("default allow := false\n\n")
	r.WriteString("allow if password == \"\"\n\n")
	r.WriteString("allow if {\n\tpassword != \"\"\n\tcount(violations) == 0\n}\n\n")
	r.WriteString("messages contains m if some m in violations\n")
	if boolField(e, "check_static_rules", true) {
		if n := intField(e, "length_min", 0); n > 0 {
			fmt.Fprintf(&r, "\nviolations contains %s if count(password) < %d\n", orMsg(fmt.Sprintf("Password must be at least %d characters long.", n)), n)
		}
		for _, rule := range []struct{ key, class, what string }{
			{"amount_uppercase", `\p{Lu}`, "uppercase letters"},
			{"amount_lowercase", `\p{Ll}`, "lowercase letters"},
			{"amount_digits", `\p{Nd}`, "digits"},
		} {
			if n := intField(e, rule.key, 0); n > 0 {
				fmt.Fprintf(&r, "\nviolations contains %s if count(regex.find_n(%s, password, -1)) < %d\n",
					orMsg(fmt.Sprintf("Password must contain at least %d %s.", n, rule.what)), quote(rule.class), n)
			}
		}
		if n := intField(e, "amount_symbols", 0); n > 0 {
			charset, _ := e.fields["symbol_charset"].(string)
			if charset == "" {
				charset = defaultSymbols
			}
			fmt.Fprintf(&r, "\nsymbols := %s\n", quote(charset))
			fmt.Fprintf(&r, "\nviolations contains %s if count([ch | some ch in split(password, \"\"); contains(symbols, ch)]) < %d\n",
				orMsg(fmt.Sprintf("Password must contain at least %d symbols.", n)), n)
		}
	}
	if boolField(e, "check_zxcvbn", false) {
		t := intField(e, "zxcvbn_score_threshold", 2)
		fmt.Fprintf(&r, "\nstrength := flowgate.password_strength(password) if password != \"\"\n")
		fmt.Fprintf(&r, "\nviolations contains \"Password is too weak.\" if strength.score <= %d\n", t)
		fmt.Fprintf(&r, "\nviolations contains strength.warning if {\n\tstrength.score <= %d\n\tstrength.warning != \"\"\n}\n", t)
	}
	return module(e.name, fmt.Sprintf("Imported from authentik: password policy %q.", e.name), r.String())
}
