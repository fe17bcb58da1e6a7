package stages_test

import "testing"

func TestPasswordConfig(t *testing.T) {
	checkConfigs(t, "password", []configCase{
		{"defaults", nil, ""},
		{"authentik settings", map[string]any{"failed_attempts_before_cancel": 3.0, "allow_show_password": true,
			"backends": []any{"authentik.core.auth.InbuiltBackend"}}, ""},
		{"zero attempts", map[string]any{"failed_attempts_before_cancel": 0.0}, "at least 1"},
		{"fractional attempts", map[string]any{"failed_attempts_before_cancel": 2.5}, "failed_attempts_before_cancel"},
	})
}
