package flowengine

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSecretBox(t *testing.T) {
	oldKey := bytes.Repeat([]byte{1}, 32)
	newKey := bytes.Repeat([]byte{2}, 32)
	old, err := NewSecretBox(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("user1/dev1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "JBSWY3DP") {
		t.Fatalf("sealed value shows the secret: %s", sealed)
	}
	// Rotation: a box whose first key is new still opens what the old key sealed.
	rotated, _ := NewSecretBox(newKey, oldKey)
	if got, err := rotated.Open(sealed, []byte("user1/dev1")); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("rotated open = %q, %v", got, err)
	}
	// Copied onto another user's device, or opened without the old key, or
	// tampered with: refused.
	only, _ := NewSecretBox(newKey)
	tampered := sealed[:len(sealed)-2] + "AA"
	for name, try := range map[string]func() ([]byte, error){
		"other owner": func() ([]byte, error) { return rotated.Open(sealed, []byte("user2/dev1")) },
		"unknown key": func() ([]byte, error) { return only.Open(sealed, []byte("user1/dev1")) },
		"tampered":    func() ([]byte, error) { return rotated.Open(tampered, []byte("user1/dev1")) },
		"not sealed":  func() ([]byte, error) { return rotated.Open("JBSWY3DPEHPK3PXP", nil) },
		"truncated":   func() ([]byte, error) { return rotated.Open("v1.AAAA", nil) },
	} {
		if got, err := try(); !errors.Is(err, ErrSealed) || got != nil {
			t.Errorf("%s: got %q, %v; want ErrSealed", name, got, err)
		}
	}
	if _, err := NewSecretBox([]byte("short")); err == nil {
		t.Error("short key material accepted")
	}
}
