package stages

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("authenticator_static", newAuthenticatorStatic) }

// StaticConfig configures the authenticator_static stage, which gives the
// pending user a set of single-use recovery codes.
type StaticConfig struct {
	// TokenCount is how many codes are made (default 10).
	TokenCount int `json:"token_count,omitempty"`
	// TokenLength is how many characters each code has (default 12).
	TokenLength int `json:"token_length,omitempty"`
	// FriendlyName names the codes in the user's list of devices (default
	// "Recovery codes").
	FriendlyName string `json:"friendly_name,omitempty"`
	// ConfigureFlow is accepted for authentik exports and has no effect.
	ConfigureFlow string `json:"configure_flow,omitempty"`
}

// staticAlphabet has lower-case letters and digits without the ones easily
// read as another (0/o, 1/l/i).
const staticAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// Bounds of the config. A code of 10 characters has 49 bits of randomness:
// too many to guess online, and a slow search even from a copy of the store
// (its hashes are salted SHA-256).
const (
	maxStaticTokenCount = 50
	minStaticLength     = 10
	maxStaticLength     = 64
)

// State keys of the stage: the user the codes were made for, and the codes
// (sealed when Services.Secrets is set, so a store dump does not show them).
const (
	stateStaticUser   = "user"
	stateStaticCodes  = "codes"
	stateStaticSealed = "codes_sealed"
)

const staticConfirmField = "confirm"

type authenticatorStatic struct {
	count, length int
	name          string
}

func newAuthenticatorStatic(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg StaticConfig
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	s := &authenticatorStatic{count: 10, length: 12, name: "Recovery codes"}
	if cfg.TokenCount != 0 {
		if cfg.TokenCount < 1 || cfg.TokenCount > maxStaticTokenCount {
			return nil, fmt.Errorf("token_count: must be between 1 and %d", maxStaticTokenCount)
		}
		s.count = cfg.TokenCount
	}
	if cfg.TokenLength != 0 {
		if cfg.TokenLength < minStaticLength || cfg.TokenLength > maxStaticLength {
			return nil, fmt.Errorf("token_length: must be between %d and %d", minStaticLength, maxStaticLength)
		}
		s.length = cfg.TokenLength
	}
	if cfg.FriendlyName != "" {
		s.name = cfg.FriendlyName
	}
	return s, nil
}

func (s *authenticatorStatic) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	u, _, err := mfaSetupUser(ctx, sc)
	if err != nil || u == nil {
		return nil, err // no user: nothing to show, Submit denies at once
	}
	codes, _, err := s.codes(sc, u.ID)
	if err != nil {
		return nil, err
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{{
			Key: staticConfirmField, Type: flowengine.FieldCheckbox, Required: true,
			Label: "I have saved these recovery codes",
		}},
		Messages: []string{"Each code signs you in once if you lose your other second factor. " +
			"Keep them somewhere safe: they are shown only now."},
		Data: map[string]any{"codes": codes},
	}, nil
}

func (s *authenticatorStatic) Submit(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (flowengine.Outcome, error) {
	u, deny, err := mfaSetupUser(ctx, sc)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if u == nil {
		return flowengine.Deny(deny), nil
	}
	codes, fresh, err := s.codes(sc, u.ID)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if fresh {
		// Confirming codes never shown (the state was lost, or is another
		// user's) would save codes nobody has: show the new ones first.
		return flowengine.Invalid(nil, "Save the recovery codes shown, then confirm."), nil
	}
	if !answer.Bool(staticConfirmField) {
		return flowengine.Invalid(map[string][]string{staticConfirmField: {"Confirm that you have saved the codes."}}), nil
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return flowengine.Outcome{}, fmt.Errorf("making recovery code salt: %w", err)
	}
	dev := flowengine.Device{
		ID: flowengine.NewID(), Class: flowengine.DeviceStatic, Name: s.name, CreatedAt: sc.Clock.Now(),
		Static: &flowengine.StaticDevice{Salt: hex.EncodeToString(salt)},
	}
	for _, c := range codes {
		dev.Static.Codes = append(dev.Static.Codes, staticHash(dev.Static.Salt, c))
	}
	_, err = flowengine.ModifyUser(ctx, sc.Store, u.ID, func(u *flowengine.User) error {
		// New codes replace the old: a user who asks for new codes because the
		// old ones leaked must not keep those working.
		for _, old := range u.DevicesOf(flowengine.DeviceStatic) {
			u.RemoveDevice(old.ID)
		}
		u.Devices = append(u.Devices, dev)
		return nil
	})
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny(msgAccountGone), nil
	case err != nil:
		return flowengine.Outcome{}, fmt.Errorf("saving recovery codes: %w", err)
	}
	clear(sc.State)
	// No auth method: being shown codes proves nothing about who this is.
	return flowengine.Continue(), nil
}

// codes returns the codes made for this execution and user, making them the
// first time (fresh), so the page shows the same codes however often it is
// loaded.
func (s *authenticatorStatic) codes(sc *flowengine.StageContext, userID string) (codes []string, fresh bool, err error) {
	aad := []byte("static-setup/" + userID)
	if sc.State[stateStaticUser] == userID {
		codes = flowengine.StringList(sc.State[stateStaticCodes])
		if sealed, ok := sc.State[stateStaticSealed].(string); ok && sc.Services.Secrets != nil {
			// Codes sealed under keys since rotated away do not open: make
			// new ones, as if the page were shown for the first time.
			if raw, err := sc.Services.Secrets.Open(sealed, aad); err == nil {
				_ = json.Unmarshal(raw, &codes)
			}
		}
		if len(codes) > 0 {
			return codes, false, nil
		}
	}
	codes = make([]string, s.count)
	for i := range codes {
		if codes[i], err = randomStaticCode(s.length); err != nil {
			return nil, false, err
		}
	}
	clear(sc.State)
	sc.State[stateStaticUser] = userID
	if sc.Services.Secrets == nil {
		sc.State[stateStaticCodes] = codes
		return codes, true, nil
	}
	raw, err := json.Marshal(codes)
	if err != nil {
		return nil, false, fmt.Errorf("encoding recovery codes: %w", err)
	}
	sealed, err := sc.Services.Secrets.Seal(raw, aad)
	if err != nil {
		return nil, false, fmt.Errorf("sealing recovery codes: %w", err)
	}
	sc.State[stateStaticSealed] = sealed
	return codes, true, nil
}

// randomStaticCode draws n characters of staticAlphabet uniformly from
// crypto/rand (bytes past the largest multiple of the alphabet's size are
// dropped, so no character is likelier than another).
func randomStaticCode(n int) (string, error) {
	const size = len(staticAlphabet)
	limit := byte(256 / size * size)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+1)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("making recovery code: %w", err)
		}
		for _, b := range buf {
			if b < limit && len(out) < n {
				out = append(out, staticAlphabet[int(b)%size])
			}
		}
	}
	return string(out), nil
}

// staticHash is how a recovery code is stored: hex SHA-256 of salt || code.
// Codes are long random strings (see minStaticLength), not passwords people
// choose, so a fast hash is enough; the salt keeps equal codes apart.
func staticHash(salt, code string) string {
	sum := sha256.Sum256([]byte(salt + code))
	return hex.EncodeToString(sum[:])
}

// msgAccountGone: the pending user was deleted while the flow ran.
const msgAccountGone = "This account no longer exists."

// mfaSetupUser loads the pending user an authenticator is set up for. Without
// one (or when it was deleted) it returns nil and the message to deny with.
func mfaSetupUser(ctx context.Context, sc *flowengine.StageContext) (*flowengine.User, string, error) {
	u, err := sc.PendingUser(ctx)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return nil, msgAccountGone, nil
	case err != nil:
		return nil, "", err
	case u == nil:
		return nil, "There is no account to set up a second factor for; sign in first.", nil
	}
	return u, "", nil
}
