package stages_test

import "testing"

func TestDummyConfig(t *testing.T) {
	checkConfigs(t, "dummy", []configCase{
		{"defaults", nil, ""},
		{"throw_error", map[string]any{"throw_error": true}, ""},
		{"unknown key", map[string]any{"throw": true}, `unknown config key "throw"`},
	})
}
