// Package cookiecodec signs and encrypts cookie values (gorilla/securecookie)
// with rotating key pairs, and remembers values it has verified.
package cookiecodec

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/gorilla/securecookie"

	"github.com/flowgate/flowgate/flowengine"
)

// Codec encodes with the first key pair and decodes with any of them.
type Codec struct {
	// Secrets seals device secrets with keys derived from the same pairs.
	Secrets *flowengine.SecretBox

	codecs []securecookie.Codec

	mu       sync.RWMutex
	verified map[string]string // cookie value → decoded value, verified values only
}

// maxVerified bounds the verified-value cache; it is dropped when full.
const maxVerified = 100_000

// DecodeKey reads one key: 32 bytes as 64 hex characters.
func DecodeKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(s)
	if err != nil || len(k) != 32 {
		return nil, errors.New("each key must be 32 bytes written as 64 hex characters (caddy flowgate keygen)")
	}
	return k, nil
}

// NewKeyPair returns a fresh hash key and block key in hex.
func NewKeyPair() (string, string) {
	return hex.EncodeToString(securecookie.GenerateRandomKey(32)), hex.EncodeToString(securecookie.GenerateRandomKey(32))
}

// New builds a codec from pairs of hex keys: hash key, block key, [hash, block…].
func New(pairs []string) (*Codec, error) {
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		return nil, errors.New("secret_keys: want pairs of hash key and block key")
	}
	c := &Codec{verified: map[string]string{}}
	var materials [][]byte
	for i := 0; i < len(pairs); i += 2 {
		hashKey, err1 := DecodeKey(pairs[i])
		blockKey, err2 := DecodeKey(pairs[i+1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("secret_keys pair %d: %w", i/2+1, err)
		}
		materials = append(materials, append(append([]byte{}, hashKey...), blockKey...))
		sc := securecookie.New(hashKey, blockKey)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(0) // the server-side session decides expiry
		sc.MaxLength(4096)
		c.codecs = append(c.codecs, sc)
	}
	box, err := flowengine.NewSecretBox(materials...)
	if err != nil {
		return nil, err
	}
	c.Secrets = box
	return c, nil
}

// Encode seals value for the cookie called name.
func (c *Codec) Encode(name string, value []byte) (string, error) {
	return securecookie.EncodeMulti(name, value, c.codecs...)
}

// Decode opens a sealed value; forged, truncated or foreign-key values fail.
func (c *Codec) Decode(name, value string) ([]byte, bool) {
	var out []byte
	if err := securecookie.DecodeMulti(name, value, &out, c.codecs...); err != nil {
		return nil, false
	}
	return out, true
}

// DecodeCached is Decode for a value read on every request (the session cookie):
// values that verified once are remembered, so the HMAC and decryption run once
// per cookie. Only verified values enter, so forgeries cannot fill the cache.
func (c *Codec) DecodeCached(name, value string) (string, bool) {
	c.mu.RLock()
	v, ok := c.verified[value]
	c.mu.RUnlock()
	if ok {
		return v, true
	}
	out, ok := c.Decode(name, value)
	if !ok || len(out) == 0 {
		return "", false
	}
	c.mu.Lock()
	if len(c.verified) >= maxVerified {
		c.verified = map[string]string{}
	}
	c.verified[value] = string(out)
	c.mu.Unlock()
	return string(out), true
}
