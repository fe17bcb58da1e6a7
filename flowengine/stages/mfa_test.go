package stages

import (
	"strings"
	"testing"
)

// Hooks for the external tests (authenticator_totp_test.go,
// authenticator_static_test.go), which drive these through real stores.
var (
	CheckTOTP   = checkTOTP
	CheckStatic = checkStatic
)

func TestStaticCodeNormalised(t *testing.T) {
	for in, want := range map[string]string{
		"abcd-efgh-jkmn":   "abcdefghjkmn",
		" ABCD EFGH JKMN ": "abcdefghjkmn",
		"ab\tcd\n":         "abcd",
		"":                 "",
		"---":              "",
	} {
		if got := normalizeStaticCode(in); got != want {
			t.Errorf("normalizeStaticCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// Codes use only the unambiguous alphabet, have the asked length and do not
// repeat.
func TestStaticRandomCodes(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		c, err := randomStaticCode(12)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 12 || seen[c] {
			t.Fatalf("code %q: wrong length or repeated", c)
		}
		seen[c] = true
		for _, r := range c {
			if !strings.ContainsRune(staticAlphabet, r) {
				t.Fatalf("code %q has %q, not in the alphabet", c, r)
			}
			counts[r]++
		}
	}
	// 24000 characters over 31 symbols: about 774 each. A biased draw (b %
	// 31 over all bytes) would give the first 8 symbols about 3% more; this
	// only catches gross mistakes such as a symbol never drawn.
	for _, r := range staticAlphabet {
		if n := counts[r]; n < 600 || n > 950 {
			t.Errorf("symbol %q drawn %d times of 24000", r, n)
		}
	}
	for _, bad := range "01ilo" {
		if strings.ContainsRune(staticAlphabet, bad) {
			t.Errorf("alphabet has ambiguous %q", bad)
		}
	}
}

func TestTOTPAlgorithmNames(t *testing.T) {
	for _, name := range []string{"", "SHA1", "sha256", "SHA512"} {
		if _, err := totpAlgorithm(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if _, err := totpAlgorithm("MD5"); err == nil {
		t.Error("MD5 accepted")
	}
}
