package stages_test

import "testing"

func TestDenyConfig(t *testing.T) {
	checkConfigs(t, "deny", []configCase{
		{"default message", nil, ""},
		{"message", map[string]any{"deny_message": "Closed."}, ""},
		{"wrong type", map[string]any{"deny_message": 3.0}, `config key "deny_message"`},
	})
}
