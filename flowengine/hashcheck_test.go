package flowengine_test

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine"
)

func TestCheckPasswordHash(t *testing.T) {
	def, err := flowengine.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	good := string(bc)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 16 and 32 bytes
	argon := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	for _, tc := range []struct {
		name, hash string
		wantErr    string // "" = accepted
	}{
		{"argon2id default", def, ""},
		{"argon2id test hash", flowengine.TestHash("pw"), ""},
		{"argon2id written by hand", argon("m=47104,t=1,p=1"), ""},
		{"argon2id, 4 lanes", argon("m=65536,t=3,p=4"), ""},
		{"bcrypt 2a", good, ""},
		{"bcrypt 2b", "$2b$" + good[4:], ""},
		{"bcrypt 2y", "$2y$" + good[4:], ""},
		{"bcrypt cost 31", good[:4] + "31" + good[6:], ""},

		{"plaintext", "plaintext", "neither argon2id"},
		{"empty", "", "neither argon2id"},
		{"argon2i", "$argon2i$v=19$m=47104,t=1,p=1$" + salt + "$" + key, "neither argon2id"},
		{"bcrypt 2x", "$2x$" + good[4:], "neither argon2id"},
		{"bcrypt placeholder", "$2a$14$…", "of 8 characters, want 60"},
		{"bcrypt truncated", good[:59], "of 59 characters, want 60"},
		{"bcrypt cost 03", good[:4] + "03" + good[6:], "cost 3 outside 4–31"},
		{"bcrypt cost 32", good[:4] + "32" + good[6:], "cost 32 outside 4–31"},
		{"bcrypt cost not digits", good[:4] + "+4" + good[6:], "two-digit cost"},
		{"bcrypt no $ after cost", good[:6] + "." + good[7:], "two-digit cost"},
		{"bcrypt standard base64", good[:58] + "+=", "outside bcrypt's alphabet (./A-Za-z0-9) at position 59"},
		{"bcrypt multibyte placeholder", good[:57] + "…", "outside bcrypt's alphabet"},
		{"argon2id placeholder", "$argon2id$…", "wrong number of fields"},
		{"argon2id version 16", strings.Replace(argon("m=47104,t=1,p=1"), "v=19", "v=16", 1), "version"},
		{"argon2id version suffix", strings.Replace(argon("m=47104,t=1,p=1"), "v=19", "v=19x", 1), "version"},
		{"argon2id parameters out of order", argon("t=1,m=47104,p=1"), "parameters not"},
		{"argon2id extra parameter", argon("m=47104,t=1,p=1,keyid=x"), "parameters not"},
		{"argon2id leading zero", argon("m=047104,t=1,p=1"), "parameters not"},
		{"argon2id negative", argon("m=47104,t=-1,p=1"), "parameters not"},
		{"argon2id no passes", argon("m=47104,t=0,p=1"), "passes t=0 outside 1–100"},
		{"argon2id endless passes", argon("m=47104,t=1000000,p=1"), "passes t=1000000"},
		{"argon2id no lanes", argon("m=47104,t=1,p=0"), "lanes p=0"},
		{"argon2id 256 lanes", argon("m=47104,t=1,p=256"), "lanes p=256"},
		{"argon2id too little memory", argon("m=16,t=1,p=4"), "memory m=16 KiB"},
		{"argon2id too much memory", argon("m=4194305,t=1,p=1"), "memory m=4194305 KiB"},
		{"argon2id padded salt", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "==$" + key, "salt is not unpadded base64"},
		{"argon2id short salt", "$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$" + key, "salt of 4 bytes"},
		{"argon2id key placeholder", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$…", "key is not unpadded base64"},
		{"argon2id empty key", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$", "key of 0 bytes"},
		{"argon2id huge key", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$" + strings.Repeat("A", 176), "key of 132 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := flowengine.CheckPasswordHash(tc.hash)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckPasswordHash refused a valid hash: %v", err)
				}
				// Whatever the check accepts, verification can read (cost 31
				// would take days to verify: not tried).
				if strings.Contains(tc.hash, "$31$") {
					return
				}
				if _, err := flowengine.VerifyPassword(tc.hash, "pw"); err != nil {
					t.Fatalf("accepted, but VerifyPassword: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckPasswordHash = %v, want an error containing %q", err, tc.wantErr)
			}
			if len(tc.hash) > 12 && strings.Contains(err.Error(), tc.hash) {
				t.Fatalf("the error repeats the hash: %v", err)
			}
		})
	}
}

// FuzzCheckPasswordHash: nothing panics, and whatever CheckPasswordHash
// accepts, the verifiers read (bcrypt's cost; argon2id at the cheapest
// parameters, where verifying is quick).
func FuzzCheckPasswordHash(f *testing.F) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, seed := range []string{string(bc), flowengine.TestHash("pw"), "$2a$14$…", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if flowengine.CheckPasswordHash(h) != nil {
			return
		}
		if !strings.HasPrefix(h, "$argon2id$") {
			if _, err := bcrypt.Cost([]byte(h)); err != nil {
				t.Fatalf("CheckPasswordHash accepted %q, bcrypt.Cost: %v", h, err)
			}
			return
		}
		if strings.HasPrefix(h, "$argon2id$v=19$m=8,t=1,p=1$") {
			if _, err := flowengine.VerifyPassword(h, "pw"); err != nil {
				t.Fatalf("CheckPasswordHash accepted %q, VerifyPassword: %v", h, err)
			}
		}
	})
}
