package flowengine_test

import (
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := flowengine.HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, password string
		want                 bool
	}{
		{"right", h, "s3cret", true},
		{"wrong", h, "s3cret ", false},
		{"base64-wrapped", base64.StdEncoding.EncodeToString([]byte(h)), "s3cret", true},
		{"test hash", flowengine.TestHash("pw"), "pw", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := flowengine.VerifyPassword(tc.hash, tc.password)
			if err != nil || ok != tc.want {
				t.Fatalf("VerifyPassword = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
	if _, err := flowengine.VerifyPassword("plaintext", "plaintext"); err == nil {
		t.Fatal("a hash in no known format was accepted")
	}
}

func TestNeedsRehash(t *testing.T) {
	def, err := flowengine.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 16 and 32 bytes
	for _, tc := range []struct {
		name, hash string
		want       bool
	}{
		{"default argon2id", def, false},
		{"default parameters written by hand", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$" + key, false},
		{"bcrypt", string(bc), true},
		{"argon2id, other memory", "$argon2id$v=19$m=65536,t=1,p=1$" + salt + "$" + key, true},
		{"argon2id, other time", "$argon2id$v=19$m=47104,t=3,p=1$" + salt + "$" + key, true},
		{"argon2id, other threads", "$argon2id$v=19$m=47104,t=1,p=4$" + salt + "$" + key, true},
		{"argon2id, short key", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$AAAAAAAAAAAAAAAAAAAAAA", true},
		{"argon2id, short salt", "$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$" + key, true},
		{"test hash", flowengine.TestHash("pw"), true},
		{"base64-wrapped default", base64.StdEncoding.EncodeToString([]byte(def)), true},
		{"argon2i", "$argon2i$v=19$m=47104,t=1,p=1$" + salt + "$" + key, true},
		{"garbage", "$argon2id$nonsense", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := flowengine.NeedsRehash(tc.hash); got != tc.want {
				t.Fatalf("NeedsRehash(%q) = %v, want %v", tc.hash, got, tc.want)
			}
		})
	}
}
