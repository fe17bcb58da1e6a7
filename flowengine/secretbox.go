package flowengine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Secrets seals what must not be readable from a copy of the store (TOTP
// secrets). aad binds a sealed value to its owner (user and device ID), so a
// value copied onto another record does not open.
type Secrets interface {
	Seal(plaintext, aad []byte) (string, error)
	Open(sealed string, aad []byte) ([]byte, error)
}

// ErrSealed: a sealed value does not open with any key (wrong keys, or tampered).
var ErrSealed = errors.New("sealed value does not open with the configured keys")

// SecretBox is Secrets with AES-256-GCM under keys derived (HKDF-SHA256) from
// the gateway's secret keys. The first key seals; every key opens, so keys can
// be rotated the same way as the cookie keys.
type SecretBox struct {
	aeads []cipher.AEAD
}

const sealPrefix = "v1."

// NewSecretBox derives one sealing key from each key material given.
func NewSecretBox(materials ...[]byte) (*SecretBox, error) {
	if len(materials) == 0 {
		return nil, errors.New("secret box: no key material")
	}
	b := &SecretBox{}
	for i, m := range materials {
		if len(m) < 16 {
			return nil, fmt.Errorf("secret box: key material %d is shorter than 16 bytes", i)
		}
		key, err := hkdf.Key(sha256.New, m, nil, "flowgate device secrets v1", 32)
		if err != nil {
			return nil, fmt.Errorf("secret box: deriving key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

// Seal encrypts plaintext under the first key.
func (b *SecretBox) Seal(plaintext, aad []byte) (string, error) {
	aead := b.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, plaintext, aad)
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed under any of the keys.
func (b *SecretBox) Open(sealed string, aad []byte) ([]byte, error) {
	raw, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, ErrSealed
	}
	data, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, ErrSealed
	}
	for _, aead := range b.aeads {
		n := aead.NonceSize()
		if len(data) < n+aead.Overhead() {
			return nil, ErrSealed
		}
		if plain, err := aead.Open(nil, data[:n], data[n:], aad); err == nil {
			return plain, nil
		}
	}
	return nil, ErrSealed
}
