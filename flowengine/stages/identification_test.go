package stages_test

import "testing"

func TestIdentificationConfig(t *testing.T) {
	checkConfigs(t, "identification", []configCase{
		{"defaults", nil, ""},
		{"authentik settings", map[string]any{"user_fields": []any{"email"}, "pretend_user_exists": false,
			"case_insensitive_matching": true, "show_matched_user": false, "enrollment_flow": "signup", "recovery_flow": "reset"}, ""},
		{"unknown field", map[string]any{"user_fields": []any{"phone"}}, `unknown field "phone"`},
		{"unknown key", map[string]any{"sources": []any{}}, `unknown config key "sources"`},
		{"wrong type", map[string]any{"pretend_user_exists": "yes"}, `config key "pretend_user_exists"`},
	})
}
