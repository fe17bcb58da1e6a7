package authentik

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// stageModels maps authentik's stage models to flowgate's stage types.
var stageModels = map[string]string{
	"authentik_stages_identification.identificationstage":                "identification",
	"authentik_stages_password.passwordstage":                            "password",
	"authentik_stages_user_login.userloginstage":                         "user_login",
	"authentik_stages_user_logout.userlogoutstage":                       "user_logout",
	"authentik_stages_user_write.userwritestage":                         "user_write",
	"authentik_stages_user_delete.userdeletestage":                       "user_delete",
	"authentik_stages_prompt.promptstage":                                "prompt",
	"authentik_stages_email.emailstage":                                  "email",
	"authentik_stages_captcha.captchastage":                              "captcha",
	"authentik_stages_consent.consentstage":                              "consent",
	"authentik_stages_deny.denystage":                                    "deny",
	"authentik_stages_dummy.dummystage":                                  "dummy",
	"authentik_stages_redirect.redirectstage":                            "redirect",
	"authentik_stages_invitation.invitationstage":                        "invitation",
	"authentik_stages_authenticator_totp.authenticatortotpstage":         "authenticator_totp",
	"authentik_stages_authenticator_static.authenticatorstaticstage":     "authenticator_static",
	"authentik_stages_authenticator_webauthn.authenticatewebauthnstage":  "authenticator_webauthn",
	"authentik_stages_authenticator_webauthn.authenticatorwebauthnstage": "authenticator_webauthn",
	"authentik_stages_authenticator_validate.authenticatorvalidatestage": "authenticator_validate",
}

// policyModels maps the policy models the import translates to Rego.
var policyModels = map[string]string{
	"authentik_policies_expression.expressionpolicy": "expression",
	"authentik_policies_reputation.reputationpolicy": "reputation",
	"authentik_policies_password.passwordpolicy":     "password",
	"authentik_policies_dummy.dummypolicy":           "dummy",
}

// classify says what an entry of this model becomes. Stage and policy models
// flowgate has no counterpart for are still stages and policies (stype ""),
// so that a binding to them can be refused, or the policy made to fail closed.
func classify(model string) (kind, string) {
	switch model {
	case "authentik_flows.flow":
		return kindFlow, ""
	case "authentik_flows.flowstagebinding":
		return kindStageBinding, ""
	case "authentik_policies.policybinding":
		return kindPolicyBinding, ""
	case "authentik_stages_prompt.prompt":
		return kindPrompt, ""
	case "authentik_crypto_secrets.secret":
		return kindSecret, ""
	case "authentik_core.group":
		return kindGroup, ""
	case "authentik_core.user":
		return kindUser, ""
	case "authentik_blueprints.metaapplyblueprint":
		return kindMeta, ""
	}
	if t, ok := stageModels[model]; ok {
		return kindStage, t
	}
	if t, ok := policyModels[model]; ok {
		return kindPolicy, t
	}
	app, cls, _ := strings.Cut(model, ".")
	switch {
	case strings.HasPrefix(app, "authentik_stages_") && strings.HasSuffix(cls, "stage"):
		return kindStage, ""
	case strings.HasPrefix(app, "authentik_policies_") && strings.HasSuffix(cls, "policy"):
		return kindPolicy, ""
	}
	return kindOther, ""
}

// conv says how a setting's value is carried over.
type conv int

const (
	plain      conv = iota
	flowRef         // a flow: its slug
	stageRefs       // a list of stages: their names
	groupRef        // a group: its name
	secretRef       // a secret: its value
	policyRefs      // a list of policies: their names
	promptRefs      // a list of prompt fields: inline
	minutes         // an integer of minutes (older exports) or a duration
	integer         // a number, possibly written as a string ("6")
	inlined         // a stage bound after this one instead (inlineStages)
)

type setting struct {
	to   string // flowgate's key; the same name unless authentik's differs
	conv conv
}

// stageSettings lists, per stage type, the authentik settings flowgate has.
// Anything else an entry sets is left out with a warning.
var stageSettings = map[string]map[string]setting{
	"identification": {
		"user_fields": {}, "pretend_user_exists": {}, "case_insensitive_matching": {},
		"show_matched_user": {}, "enrollment_flow": {conv: flowRef}, "recovery_flow": {conv: flowRef},
		"password_stage": {conv: inlined}, "captcha_stage": {conv: inlined},
	},
	"password": {
		"backends": {}, "configure_flow": {conv: flowRef}, "failed_attempts_before_cancel": {conv: integer},
		"allow_show_password": {},
	},
	"user_login": {
		"session_duration": {}, "remember_me_offset": {}, "terminate_other_sessions": {},
		"geoip_binding": {}, "network_binding": {},
	},
	"user_logout": {},
	"user_write": {
		"user_creation_mode": {}, "create_users_as_inactive": {}, "create_users_group": {conv: groupRef},
		"user_path_template": {},
	},
	"user_delete": {},
	"prompt":      {"fields": {conv: promptRefs}, "validation_policies": {conv: policyRefs}},
	"email": {
		"subject": {}, "token_expiry": {conv: minutes}, "activate_user_on_success": {},
		"use_global_settings": {},
	},
	"captcha": {
		"public_key": {}, "private_key": {}, "secret": {to: "private_key", conv: secretRef},
		"js_url": {}, "api_url": {}, "score_min_threshold": {},
	},
	"consent":    {"mode": {}, "consent_expire_in": {}},
	"deny":       {"deny_message": {}},
	"dummy":      {"throw_error": {}},
	"redirect":   {"mode": {}, "target_static": {}, "target_flow": {conv: flowRef}, "keep_context": {}},
	"invitation": {"continue_flow_without_invitation": {}},
	"authenticator_totp": {
		"digits": {conv: integer}, "friendly_name": {}, "configure_flow": {conv: flowRef},
	},
	"authenticator_static": {
		"token_count": {conv: integer}, "token_length": {conv: integer}, "friendly_name": {},
		"configure_flow": {conv: flowRef},
	},
	"authenticator_webauthn": {
		"user_verification": {}, "resident_key_requirement": {}, "authenticator_attachment": {},
		"friendly_name": {}, "configure_flow": {conv: flowRef},
	},
	"authenticator_validate": {
		"device_classes": {}, "not_configured_action": {}, "configuration_stages": {conv: stageRefs},
		"webauthn_user_verification": {},
	},
}

// bookkeeping are fields authentik exports carry that describe the object
// rather than configure it; they are dropped without a warning.
var bookkeeping = map[string]bool{
	"pk": true, "name": true, "component": true, "verbose_name": true, "verbose_name_plural": true,
	"meta_model_name": true, "flow_set": true, "stage_uuid": true, "policy_uuid": true,
	"policybindingmodel_ptr_id": true, "pbm_uuid": true, "bound_to": true,
}

// captchaDefaults are authentik's captcha defaults (reCAPTCHA), which its
// exports omit; flowgate's own default is Turnstile.
var captchaDefaults = map[string]string{
	"js_url":  "https://www.recaptcha.net/recaptcha/api.js",
	"api_url": "https://www.recaptcha.net/recaptcha/api/siteverify",
}

// stageConfig carries over a stage entry's settings.
func (c *converter) stageConfig(e *entry) (map[string]any, error) {
	table := stageSettings[e.stype]
	cfg := map[string]any{}
	var left []string
	for _, k := range sortedKeys(e.fields) {
		v := e.fields[k]
		if bookkeeping[k] {
			continue
		}
		s, ok := table[k]
		if !ok {
			left = append(left, k)
			continue
		}
		if v == nil {
			continue // authentik writes null for an unset reference
		}
		to := s.to
		if to == "" {
			to = k
		}
		out, err := c.convertSetting(e, k, s.conv, v)
		if err != nil {
			return nil, err
		}
		if out != nil {
			cfg[to] = out
		}
	}
	switch e.stype {
	case "identification":
		if l, ok := cfg["user_fields"].([]any); ok {
			var keep []any
			for _, f := range l {
				if f == "username" || f == "email" {
					keep = append(keep, f)
				} else {
					c.warn(e, e.lineOf("user_fields"), WarnSetting, fmt.Sprintf("user_fields: %q left out (flowgate identifies by username and email)", pyStr(f)))
				}
			}
			cfg["user_fields"] = keep
			if len(keep) == 0 {
				delete(cfg, "user_fields")
			}
		}
	case "captcha":
		for k, v := range captchaDefaults {
			if _, ok := cfg[k]; !ok {
				cfg[k] = v
			}
		}
	case "authenticator_validate":
		if l, ok := cfg["device_classes"].([]any); ok {
			var keep []any
			for _, d := range l {
				switch d {
				case "totp", "static", "webauthn":
					keep = append(keep, d)
				default:
					c.warn(e, e.lineOf("device_classes"), WarnSetting, fmt.Sprintf("device_classes: %q left out (flowgate has totp, static, webauthn)", pyStr(d)))
				}
			}
			if len(keep) == 0 && len(l) > 0 {
				// An empty list means every class to flowgate: accepting more
				// devices than the operator chose would weaken the stage.
				return nil, fail(e, e.lineOf("device_classes"), "device_classes: none that flowgate has (totp, static, webauthn)")
			}
			cfg["device_classes"] = keep
		}
	case "authenticator_webauthn":
		if cfg["authenticator_attachment"] == "" {
			delete(cfg, "authenticator_attachment")
		}
	}
	if len(left) > 0 {
		c.warn(e, e.lineOf(left[0]), WarnSetting, "settings left out, flowgate has no counterpart: "+strings.Join(left, ", "))
	}
	if len(cfg) == 0 {
		return nil, nil
	}
	return cfg, nil
}

func (c *converter) convertSetting(e *entry, key string, cv conv, v any) (any, error) {
	line := e.lineOf(key)
	switch cv {
	case inlined:
		return nil, nil
	case flowRef:
		return c.nameOf(e, key, v, kindFlow)
	case groupRef:
		return c.nameOf(e, key, v, kindGroup)
	case secretRef:
		t, _, _ := c.target(v)
		if t == nil || t.kind != kindSecret {
			return nil, fail(e, line, "%s: not a secret of this file (an authentik_crypto_secrets.secret entry)", key)
		}
		t.used = true
		s, ok := t.fields["value"].(string)
		if !ok || s == "" {
			return nil, fail(t, t.lineOf("value"), "a secret needs a value")
		}
		return s, nil
	case stageRefs, policyRefs:
		l, ok := v.([]any)
		if !ok {
			return nil, fail(e, line, "%s must be a list", key)
		}
		want := kindStage
		if cv == policyRefs {
			want = kindPolicy
		}
		var out []any
		for _, x := range l {
			name, err := c.nameOf(e, key, x, want)
			if err != nil {
				return nil, err
			}
			out = append(out, name)
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case promptRefs:
		l, ok := v.([]any)
		if !ok {
			return nil, fail(e, line, "%s must be a list", key)
		}
		var out []any
		for _, x := range l {
			t, _, _ := c.target(x)
			if t == nil || t.kind != kindPrompt {
				return nil, fail(e, line, "%s: %v is not a prompt (authentik_stages_prompt.prompt) of this file", key, c.display(x))
			}
			if t.skip || t.state == "absent" {
				continue
			}
			t.used = true
			f, err := c.promptField(t)
			if err != nil {
				return nil, err
			}
			if f != nil {
				out = append(out, f)
			}
		}
		return out, nil
	case minutes:
		if n, ok := v.(int); ok {
			return "minutes=" + strconv.Itoa(n), nil
		}
		return v, nil
	case integer:
		if s, ok := v.(string); ok {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return nil, fail(e, line, "%s: %q is not a number", key, s)
			}
			return n, nil
		}
		return v, nil
	}
	return v, nil
}

// nameOf is the flowgate name of what v refers to: a flow's slug, a stage's,
// policy's or group's name, in this file or (by !Find or name) elsewhere.
func (c *converter) nameOf(e *entry, key string, v any, want kind) (string, error) {
	line := e.lineOf(key)
	t, ext, model := c.target(v)
	what := map[kind]string{kindFlow: "flow", kindStage: "stage", kindPolicy: "policy", kindGroup: "group", kindUser: "user"}[want]
	if t != nil {
		if t.kind != want {
			return "", fail(e, line, "%s: %s is not a %s", key, t.describe(), what)
		}
		if want == kindStage && t.stype == "" {
			return "", fail(e, line, "%s: flowgate has no stage like %s", key, t.describe())
		}
		if t.name == "" {
			return "", fail(t, t.line, "the %s has no name", what)
		}
		return t.name, nil
	}
	if model != "" {
		if k, stype := classify(model); k != want || want == kindStage && stype == "" {
			return "", fail(e, line, "%s: %s %q is not a %s flowgate has", key, model, ext, what)
		}
	}
	if ext == "" {
		return "", fail(e, line, "%s: %v does not name a %s", key, c.display(v), what)
	}
	return ext, nil
}

// promptTypes maps authentik's prompt types to flowgate's; "" drops the field.
var promptTypes = map[string]string{
	"text": "text", "text_area": "text_area", "username": "username", "email": "email",
	"password": "password", "number": "number", "checkbox": "checkbox", "dropdown": "dropdown",
	"radio-button-group": "radio_button_group", "radio_button_group": "radio_button_group",
	"date": "date", "hidden": "hidden", "static": "static",
	// Close enough, with a warning.
	"text_read_only": "static", "text_area_read_only": "static", "separator": "static",
	"date-time": "date", "ak-locale": "text", "file": "",
}

var promptSettings = map[string]bool{
	"field_key": true, "label": true, "type": true, "prompt_type": true, "required": true,
	"placeholder": true, "initial_value": true, "order": true, "sub_text": true,
	"placeholder_expression": true, "initial_value_expression": true,
}

// promptField builds one inline prompt field from a prompt entry.
func (c *converter) promptField(p *entry) (map[string]any, error) {
	f := map[string]any{}
	var left []string
	for _, k := range sortedKeys(p.fields) {
		if !promptSettings[k] && !bookkeeping[k] && k != "promptstage_set" {
			left = append(left, k)
		}
	}
	key, _ := p.fields["field_key"].(string)
	if key == "" {
		return nil, fail(p, p.line, "a prompt needs a field_key")
	}
	f["field_key"] = key
	typ, _ := p.fields["type"].(string)
	if typ == "" {
		typ, _ = p.fields["prompt_type"].(string)
	}
	if typ == "" {
		typ = "text"
	}
	to, known := promptTypes[strings.ToLower(typ)]
	switch {
	case !known:
		return nil, fail(p, p.lineOf("type"), "unknown prompt type %q", typ)
	case to == "":
		c.warn(p, p.lineOf("type"), WarnSetting, fmt.Sprintf("a %s prompt has no counterpart; the field was left out", typ))
		return nil, nil
	case to != typ && !(typ == "radio-button-group"):
		c.warn(p, p.lineOf("type"), WarnSetting, fmt.Sprintf("type %s became %s", typ, to))
	}
	if label, _ := p.fields["label"].(string); label != "" {
		f["label"] = label
	}
	if b, _ := p.fields["required"].(bool); b && to != "static" {
		f["required"] = true
	}
	if n, ok := p.fields["order"].(int); ok && n != 0 {
		f["order"] = n
	}
	if s, _ := p.fields["sub_text"].(string); s != "" {
		f["sub_text"] = s
	}
	for _, pair := range [][2]string{{"placeholder", "placeholder_expression"}, {"initial_value", "initial_value_expression"}} {
		v, _ := p.fields[pair[0]].(string)
		if v == "" {
			continue
		}
		if expr, _ := p.fields[pair[1]].(bool); expr {
			c.warn(p, p.lineOf(pair[0]), WarnSetting, pair[0]+" is a Python expression; left out")
			continue
		}
		f[pair[0]] = v
	}
	if to == "dropdown" || to == "radio_button_group" {
		// authentik takes the choices from the placeholder (a list when it is
		// an expression); a literal one is a single choice.
		if s, ok := f["placeholder"].(string); ok {
			f["choices"] = []any{map[string]any{"value": s}}
			delete(f, "placeholder")
		} else {
			c.warn(p, p.lineOf("type"), WarnSetting, "the choices are a Python expression; the field became text")
			to = "text"
		}
	}
	f["type"] = to
	if len(left) > 0 {
		sort.Strings(left)
		c.warn(p, p.lineOf(left[0]), WarnSetting, "settings left out, flowgate has no counterpart: "+strings.Join(left, ", "))
	}
	return f, nil
}
