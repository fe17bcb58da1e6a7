package flowengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Device classes: the kinds of second factor a user can set up. They are also
// the names authenticator_validate's device_classes uses.
const (
	DeviceTOTP     = "totp"
	DeviceStatic   = "static"
	DeviceWebAuthn = "webauthn"
)

// DeviceClasses lists every device class.
var DeviceClasses = []string{DeviceTOTP, DeviceStatic, DeviceWebAuthn}

// Authentication methods recorded in the plan context and the session
// (input.user.auth_methods), after RFC 8176 where it has a name.
const (
	MethodPassword = "pwd"
	MethodOTP      = "otp"
	MethodStatic   = "static"
	MethodWebAuthn = "webauthn"
)

// Device is one second factor of a user. Secrets inside are sealed (TOTP) or
// hashed (recovery codes); a WebAuthn credential holds only a public key.
type Device struct {
	ID        string    `json:"id"`
	Class     string    `json:"class"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`

	TOTP     *TOTPDevice     `json:"totp,omitempty"`
	Static   *StaticDevice   `json:"static,omitempty"`
	WebAuthn *WebAuthnDevice `json:"webauthn,omitempty"`
}

// TOTPDevice is an RFC 6238 authenticator app.
type TOTPDevice struct {
	// Secret is the base32 secret sealed with Services.Secrets (additional data:
	// the user ID and the device ID), never stored in the clear.
	Secret    string `json:"secret"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	Algorithm string `json:"algorithm,omitempty"` // SHA1 (default), SHA256, SHA512
	// LastStep is the time step of the last accepted code: a code of this step
	// or an earlier one is refused, so each code works once.
	LastStep int64 `json:"last_step,omitempty"`
}

// StaticDevice is a set of single-use recovery codes.
type StaticDevice struct {
	// Salt is mixed into every code's hash.
	Salt string `json:"salt"`
	// Codes are the hex SHA-256 hashes of the unused codes; a used code is removed.
	Codes []string `json:"codes"`
}

// WebAuthnDevice is a passkey or security key.
type WebAuthnDevice struct {
	// CredentialID is the authenticator's credential ID (raw bytes, base64 in JSON).
	CredentialID []byte `json:"credential_id"`
	// Credential is the stored credential as the WebAuthn library writes it
	// (public key, sign count, flags, transports); the engine does not read it.
	Credential json.RawMessage `json:"credential"`
}

// DevicesOf returns the user's devices of one class.
func (u *User) DevicesOf(class string) []Device {
	var out []Device
	for _, d := range u.Devices {
		if d.Class == class {
			out = append(out, d)
		}
	}
	return out
}

// Device returns the user's device with this ID, or nil.
func (u *User) Device(id string) *Device {
	for i := range u.Devices {
		if u.Devices[i].ID == id {
			return &u.Devices[i]
		}
	}
	return nil
}

// RemoveDevice drops the device with this ID and reports whether it was there.
func (u *User) RemoveDevice(id string) bool {
	for i := range u.Devices {
		if u.Devices[i].ID == id {
			u.Devices = append(u.Devices[:i:i], u.Devices[i+1:]...)
			return true
		}
	}
	return false
}

// ErrNoChange tells ModifyUser that fn decided to write nothing.
var ErrNoChange = errors.New("no change")

// ModifyUser reads the user, lets fn change a private copy, and writes it back
// only if nobody wrote the user meanwhile (UpdateUserIf), retrying a few times
// on a concurrent write. This is what makes a one-time code single-use under
// concurrent answers: of two requests spending the same code, one write
// fails, re-reads and sees the code spent. fn returning ErrNoChange ends
// without a write (ModifyUser returns the user and nil); any other error is
// returned as is.
func ModifyUser(ctx context.Context, s UserStore, id string, fn func(u *User) error) (*User, error) {
	for range 8 {
		prev, err := s.GetUser(ctx, id)
		if err != nil {
			return nil, err
		}
		next, err := cloneUser(prev)
		if err != nil {
			return nil, err
		}
		if err := fn(next); err != nil {
			if errors.Is(err, ErrNoChange) {
				return prev, nil
			}
			return nil, err
		}
		err = s.UpdateUserIf(ctx, next, prev)
		if errors.Is(err, ErrChanged) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
	return nil, fmt.Errorf("updating user %s: %w", id, ErrChanged)
}

// cloneUser deep-copies a user, so fn cannot reach a store's own record.
func cloneUser(u *User) (*User, error) {
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("copying user: %w", err)
	}
	c := &User{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("copying user: %w", err)
	}
	return c, nil
}
