package flowengine

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters for new hashes, as `caddy hash-password --algorithm argon2id`
// writes them.
const (
	argonTime    = 1
	argonMemory  = 46 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// ErrBadHash: a stored password hash is in no format we read.
var ErrBadHash = errors.New("unsupported password hash")

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return formatArgon2(argon2Params{argonTime, argonMemory, argonThreads}, salt, key), nil
}

type argon2Params struct {
	time    uint32
	memory  uint32 // KiB
	threads uint8
}

func formatArgon2(p argon2Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parseArgon2 reads a PHC argon2id hash, refusing parameters that would let a
// stored hash exhaust memory.
func parseArgon2(hash string) (p argon2Params, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil || p.time == 0 || p.threads == 0 || p.memory > 4<<20 {
		return p, nil, nil, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, ErrBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 || len(key) > 128 {
		return p, nil, nil, ErrBadHash
	}
	return p, salt, key, nil
}

// unwrapHash undoes the base64 wrapping older Caddyfiles put around hashes.
func unwrapHash(hash string) string {
	if !strings.HasPrefix(hash, "$") {
		if dec, err := base64.StdEncoding.DecodeString(hash); err == nil && strings.HasPrefix(string(dec), "$") {
			return string(dec)
		}
	}
	return hash
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// VerifyPassword checks a password against an argon2id (PHC) or bcrypt
// ($2a$/$2b$/$2y$) hash; base64-wrapped hashes from older Caddyfiles are accepted.
func VerifyPassword(hash, password string) (bool, error) {
	hash = unwrapHash(hash)
	switch {
	case isBcrypt(hash):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return true, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, want, err := parseArgon2(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	}
	return false, ErrBadHash
}

// NeedsRehash reports whether hash is in any form other than the one
// HashPassword writes now (bcrypt, argon2id with other parameters, a base64
// wrapping). Such a hash costs a different time to verify than the dummy one,
// so its account can be told apart from unknown usernames: after a successful
// VerifyPassword, store HashPassword(password) in its place.
func NeedsRehash(hash string) bool {
	if !strings.HasPrefix(hash, "$argon2id$") {
		return true
	}
	p, salt, key, err := parseArgon2(hash)
	return err != nil || p != (argon2Params{argonTime, argonMemory, argonThreads}) ||
		len(salt) != argonSaltLen || len(key) != argonKeyLen
}

// dummyHash is what unknown and inactive users are verified against, so that
// they take as long as a known user with a default hash: it has HashPassword's
// parameters and a random key no password derives to. It is fixed at start and
// never follows the hashes verified since, which would make its cost (and so
// whether a username exists) depend on who signed in before.
var dummyHash = func() string {
	b := make([]byte, argonSaltLen+argonKeyLen)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	return formatArgon2(argon2Params{argonTime, argonMemory, argonThreads}, b[:argonSaltLen], b[argonSaltLen:])
}()

// DummyVerify spends the time of a real verification against a default hash so
// that an unknown (or inactive) user cannot be told from a known one by how
// long a login takes.
func DummyVerify(password string) {
	_, _ = VerifyPassword(dummyHash, password)
}

// TestHash returns an argon2id hash with the lowest cost, for tests and
// benchmarks where the hash cost would drown what is measured. Never for real users.
func TestHash(password string) string {
	p := argon2Params{time: 1, memory: 8, threads: 1}
	salt := []byte("flowgate-test-salt")
	return formatArgon2(p, salt, argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argonKeyLen))
}
