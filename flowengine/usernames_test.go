package flowengine_test

import (
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

func TestCheckUsername(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  string // "" for valid
	}{
		{"plain", "alice", ""},
		{"email as username", "alice@example.com", ""},
		{"inner space", "Ada Lovelace", ""},
		{"non-ASCII", "jürgen", ""},
		{"percent and plus", "50%+off", ""},
		{"surrounding space is trimmed", "  bob  ", ""},
		{"max length in characters", strings.Repeat("ü", 150), ""},
		{"empty", "", "empty"},
		{"only spaces", "   ", "empty"},
		{"too long", strings.Repeat("a", 151), "longer than 150"},
		{"slash", "ops/alice", `'/'`},
		{"backslash", `corp\alice`, `'\\'`},
		{"newline", "a\nb", "character U+000A"},
		{"tab", "a\tb", "character U+0009"},
		{"NUL", "a\x00b", "character U+0000"},
		{"DEL", "a\x7fb", "character U+007F"},
		{"right-to-left override", "admin\u202etxt", "character U+202E"},
		{"zero-width space", "ad\u200bmin", "character U+200B"},
		{"no-break space", "a\u00a0b", "whitespace U+00A0"},
		{"ideographic space", "a\u3000b", "whitespace U+3000"},
		{"invalid UTF-8", "a\xffb", "UTF-8"},
		{"dot", ".", "dot segment"},
		{"dot dot", " .. ", "dot segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := flowengine.CheckUsername(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckUsername(%q) = %v, want nil", tc.in, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("CheckUsername(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestCheckEmail(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  string // "" for valid
	}{
		{"empty means none", "", ""},
		{"plain", "carol@example.com", ""},
		{"plus and subdomain", "carol+ops@mail.example.co.uk", ""},
		{"non-ASCII", "jürgen@example.de", ""},
		{"254 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189), ""},
		{"255 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190), "longer than 254"},
		{"no at", "carol.example.com", "missing '@'"},
		{"display name", "Carol <carol@example.com>", "not a bare address"},
		{"angle brackets", "<carol@example.com>", "not a bare address"},
		{"surrounding space", " carol@example.com", "not a bare address"},
		{"comment", "carol@example.com (work)", "not a bare address"},
		{"two addresses", "a@example.com, b@example.com", "email"},
		{"newline", "carol@example.com\nBcc: x@example.com", "email"},
		{"empty local part", "@example.com", "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := flowengine.CheckEmail(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckEmail(%q) = %v, want nil", tc.in, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("CheckEmail(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}
