package flowengine

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

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
)

// ErrBadHash: a stored password hash is in no format we read.
var ErrBadHash = errors.New("unsupported password hash")

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return encodeArgon2(password, salt, argonTime, argonMemory, argonThreads), nil
}

func encodeArgon2(password string, salt []byte, t, m uint32, p uint8) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword checks a password against an argon2id (PHC) or bcrypt
// ($2a$/$2b$/$2y$) hash; base64-wrapped hashes from older Caddyfiles are accepted.
func VerifyPassword(hash, password string) (bool, error) {
	if !strings.HasPrefix(hash, "$") {
		if dec, err := base64.StdEncoding.DecodeString(hash); err == nil && strings.HasPrefix(string(dec), "$") {
			hash = string(dec)
		}
	}
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		defer rememberShape(hash)
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return true, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		defer rememberShape(hash)
		return verifyArgon2(hash, password)
	}
	return false, ErrBadHash
}

func verifyArgon2(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return false, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 || m > 4<<20 {
		return false, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, ErrBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Dummy hashes mimic the last real hash verified (same algorithm and cost), so
// that an unknown user costs as much as a known one whatever the store holds.
var (
	dummyMu     sync.Mutex
	dummyShape  = "argon2id"
	dummyHashes = map[string]string{}
)

// hashShape is the algorithm and cost part of a hash: "$2a$14" or
// "$argon2id$v=19$m=47104,t=1,p=1".
func hashShape(hash string) string {
	parts := strings.Split(hash, "$")
	switch {
	case len(parts) >= 4 && strings.HasPrefix(parts[1], "2"):
		return "$" + parts[1] + "$" + parts[2]
	case len(parts) == 6 && parts[1] == "argon2id":
		return strings.Join(parts[:4], "$")
	}
	return ""
}

func rememberShape(hash string) {
	if shape := hashShape(hash); shape != "" {
		dummyMu.Lock()
		dummyShape = shape
		dummyMu.Unlock()
	}
}

func dummyFor(shape string) string {
	dummyMu.Lock()
	defer dummyMu.Unlock()
	if h, ok := dummyHashes[shape]; ok {
		return h
	}
	var h string
	parts := strings.Split(shape, "$")
	if len(parts) == 3 && strings.HasPrefix(parts[1], "2") {
		var cost int
		fmt.Sscanf(parts[2], "%d", &cost)
		if b, err := bcrypt.GenerateFromPassword([]byte("flowgate-dummy-password"), cost); err == nil {
			h = string(b)
		}
	} else if len(parts) == 4 {
		var m, t uint32
		var p uint8
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err == nil && t > 0 && p > 0 && m <= 4<<20 {
			h = encodeArgon2("flowgate-dummy-password", []byte("flowgate-dummy-s"), t, m, p)
		}
	}
	if h == "" {
		h = encodeArgon2("flowgate-dummy-password", []byte("flowgate-dummy-s"), argonTime, argonMemory, argonThreads)
	}
	dummyHashes[shape] = h
	return h
}

// DummyVerify spends the time of a real verification so that an unknown user
// cannot be told from a known one by how long a login takes.
func DummyVerify(password string) {
	dummyMu.Lock()
	shape := dummyShape
	dummyMu.Unlock()
	_, _ = VerifyPassword(dummyFor(shape), password)
}

// TestHash returns an argon2id hash with the lowest cost, for tests and
// benchmarks where the hash cost would drown what is measured. Never for real users.
func TestHash(password string) string {
	return encodeArgon2(password, []byte("flowgate-test-salt"), 1, 8, 1)
}
