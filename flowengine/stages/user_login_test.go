package stages_test

import "testing"

func TestUserLoginConfig(t *testing.T) {
	checkConfigs(t, "user_login", []configCase{
		{"defaults", nil, ""},
		{"go duration", map[string]any{"session_duration": "12h", "remember_me_offset": "720h"}, ""},
		{"authentik durations", map[string]any{"session_duration": "seconds=0", "remember_me_offset": "days=30;hours=1"}, ""},
		{"bad duration", map[string]any{"session_duration": "forever"}, "session_duration"},
		{"bad authentik part", map[string]any{"remember_me_offset": "fortnights=2"}, "remember_me_offset"},
		{"terminate others", map[string]any{"terminate_other_sessions": true}, ""},
	})
}
