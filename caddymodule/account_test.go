package caddymodule

import (
	"testing"

	"github.com/flowgate/flowgate/caddymodule/cookiecodec"
	"github.com/flowgate/flowgate/flowengine"
)

// The account page's token works for its own session only, and only with the
// gateway's keys.
func TestAccountToken(t *testing.T) {
	h1, b1 := cookiecodec.NewKeyPair()
	h2, b2 := cookiecodec.NewKeyPair()
	codec, err := cookiecodec.New([]string{h1, b1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := cookiecodec.New([]string{h2, b2})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{app: &App{cookies: codec}}
	mine, theirs := &flowengine.Session{ID: "session-1"}, &flowengine.Session{ID: "session-2"}
	token := h.accountToken(mine)
	foreign := (&Handler{app: &App{cookies: other}}).accountToken(mine)
	for _, tc := range []struct {
		name  string
		token string
		sess  *flowengine.Session
		want  bool
	}{
		{"own session", token, mine, true},
		{"another session", token, theirs, false},
		{"empty", "", mine, false},
		{"forged", "abc", mine, false},
		{"other keys", foreign, mine, false},
		{"session ID as token", "session-1", mine, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.validAccountToken(tc.token, tc.sess); got != tc.want {
				t.Fatalf("valid = %v, want %v", got, tc.want)
			}
		})
	}
	if token == "" || token == h.accountToken(theirs) {
		t.Fatal("tokens must differ between sessions")
	}
}

// Only a session that proved a second factor may remove devices.
func TestHasSecondFactor(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		want    bool
	}{
		{nil, false},
		{[]string{flowengine.MethodPassword}, false},
		{[]string{flowengine.MethodPassword, flowengine.MethodOTP}, true},
		{[]string{flowengine.MethodStatic}, true},
		{[]string{flowengine.MethodWebAuthn}, true},
	} {
		if got := hasSecondFactor(&flowengine.Session{AuthMethods: tc.methods}); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.methods, got, tc.want)
		}
	}
}
