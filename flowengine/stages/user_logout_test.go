package stages_test

import "testing"

func TestUserLogoutConfig(t *testing.T) {
	checkConfigs(t, "user_logout", []configCase{
		{"no config", nil, ""},
		{"any key is unknown", map[string]any{"redirect": "/"}, `unknown config key "redirect"`},
	})
}
