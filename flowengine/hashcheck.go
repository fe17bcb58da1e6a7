package flowengine

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// bcryptAlphabet is bcrypt's own base64 alphabet (not the standard one).
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Bounds of an argon2id hash that CheckPasswordHash accepts. Memory is the
// limit VerifyPassword enforces too; the passes bound keeps a seeded hash from
// making every sign-in of its user take minutes; salt and key lengths are the
// Argon2 specification's minimums (RFC 9106) and VerifyPassword's maximum.
const (
	argonMinSalt   = 8
	argonMinKey    = 4
	argonMaxKey    = 128
	argonMaxMemory = 4 << 20 // KiB: 4 GiB
	argonMaxTime   = 100
)

// CheckPasswordHash reports whether h is a password hash VerifyPassword can
// check: bcrypt ($2a$, $2b$ or $2y$, cost 4–31, 60 characters of bcrypt's
// alphabet, as `caddy hash-password` and `htpasswd -B` write it) or argon2id in
// the PHC string format ($argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>,
// salt and key in unpadded base64, parameters in range). A placeholder such as
// "$2a$14$…" is refused here, when a blueprint is loaded, rather than making
// every sign-in of that user fail. The error never repeats the hash.
func CheckPasswordHash(h string) error {
	switch {
	case isBcrypt(h):
		return checkBcrypt(h)
	case strings.HasPrefix(h, "$argon2id$"):
		return checkArgon2(h)
	}
	return errors.New("neither argon2id ($argon2id$v=19$…) nor bcrypt ($2a$/$2b$/$2y$)")
}

// checkBcrypt checks the layout $2x$<cost>$<22 salt><31 hash characters>.
func checkBcrypt(h string) error {
	if len(h) != 60 {
		return fmt.Errorf("bcrypt hash of %d characters, want 60 (a placeholder?)", utf8.RuneCountInString(h))
	}
	if !isDigit(h[4]) || !isDigit(h[5]) || h[6] != '$' {
		return errors.New("bcrypt hash without a two-digit cost after the prefix ($2a$10$…)")
	}
	cost := int(h[4]-'0')*10 + int(h[5]-'0')
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost %d outside %d–%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	for i := 7; i < len(h); i++ {
		if !strings.ContainsRune(bcryptAlphabet, rune(h[i])) {
			return fmt.Errorf("bcrypt hash with a character outside bcrypt's alphabet (./A-Za-z0-9) at position %d (a placeholder?)", i+1)
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// checkArgon2 checks a PHC argon2id string strictly: the fields VerifyPassword
// reads, in the form it writes them (no extra parameters, no padding), with
// parameters in range.
func checkArgon2(h string) error {
	const want = "want $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>"
	parts := strings.Split(h, "$")
	if len(parts) != 6 {
		return errors.New("argon2id hash with the wrong number of fields: " + want)
	}
	if parts[2] != "v=19" {
		return errors.New("argon2id hash of another version than v=19: " + want)
	}
	var m, t, p uint64
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return errors.New("argon2id hash parameters not m=<KiB>,t=<passes>,p=<lanes>: " + want)
	}
	for i, spec := range []struct {
		key string
		v   *uint64
	}{{"m=", &m}, {"t=", &t}, {"p=", &p}} {
		digits, ok := strings.CutPrefix(params[i], spec.key)
		n, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil || digits != strconv.FormatUint(n, 10) {
			return errors.New("argon2id hash parameters not m=<KiB>,t=<passes>,p=<lanes>: " + want)
		}
		*spec.v = n
	}
	switch {
	case p < 1 || p > 255:
		return fmt.Errorf("argon2id lanes p=%d outside 1–255", p)
	case t < 1 || t > argonMaxTime:
		return fmt.Errorf("argon2id passes t=%d outside 1–%d", t, argonMaxTime)
	case m < 8*p || m > argonMaxMemory:
		return fmt.Errorf("argon2id memory m=%d KiB outside 8×p–%d", m, argonMaxMemory)
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return errors.New("argon2id salt is not unpadded base64")
	}
	if len(salt) < argonMinSalt {
		return fmt.Errorf("argon2id salt of %d bytes, want at least %d", len(salt), argonMinSalt)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return errors.New("argon2id key is not unpadded base64 (a placeholder?)")
	}
	if len(key) < argonMinKey || len(key) > argonMaxKey {
		return fmt.Errorf("argon2id key of %d bytes, want %d–%d", len(key), argonMinKey, argonMaxKey)
	}
	// What VerifyPassword will read must agree with what was checked here.
	if _, _, _, err := parseArgon2(h); err != nil {
		return fmt.Errorf("argon2id hash: %w", err)
	}
	return nil
}
