package stages

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/flowgate/flowgate/flowengine"
)

// Shared by the authenticator setup stages and authenticator_validate.
//
// Contract (the setup stages' file owners implement these; authenticator_validate
// calls them):
//
//   - checkTOTP verifies code against every TOTP device of the user, allowing one
//     time step of skew either way, and spends it: the accepting device's
//     LastStep moves to the code's step through flowengine.ModifyUser, so a
//     replay, an older code or a concurrent second use of the same code is
//     refused. It returns the device that accepted the code, or nil (and a nil
//     error) when none did. Errors are store or sealing failures only.
//   - checkStatic does the same for recovery codes: an accepted code is removed
//     from its device atomically (ModifyUser); nil when no device holds it.
//
// Neither counts attempts: authenticator_validate regulates (Services.Regulator)
// around them, like the password stage.

// errNoSecrets: TOTP needs Services.Secrets to seal secrets at rest.
var errNoSecrets = errors.New("no secret keys to seal TOTP secrets with")

// totpSkew is how many time steps a code may be off either way (clock drift,
// a code typed just as it changed).
const totpSkew = 1

// checkTOTP: see above. The whole check runs inside ModifyUser, so a request
// that loses the race to spend a code re-reads the user and finds the step
// already spent.
func checkTOTP(ctx context.Context, sc *flowengine.StageContext, userID, code string) (*flowengine.Device, error) {
	code = stripSpaces(code)
	if code == "" || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return nil, nil
	}
	now := sc.Clock.Now()
	var accepted string
	var sealErr error
	u, err := flowengine.ModifyUser(ctx, sc.Store, userID, func(u *flowengine.User) error {
		accepted, sealErr = "", nil
		for i := range u.Devices {
			d := &u.Devices[i]
			if d.Class != flowengine.DeviceTOTP || d.TOTP == nil || len(code) != d.TOTP.Digits {
				continue
			}
			if sc.Services.Secrets == nil {
				return errNoSecrets
			}
			secret, err := sc.Services.Secrets.Open(d.TOTP.Secret, totpAAD(u.ID, d.ID))
			if err != nil {
				// Another device may still accept the code; report only if none does.
				sealErr = fmt.Errorf("opening TOTP secret of device %s: %w", d.ID, err)
				continue
			}
			step, ok, err := totpMatch(string(secret), code, now, d.TOTP)
			if err != nil {
				sealErr = fmt.Errorf("device %s: %w", d.ID, err)
				continue
			}
			if !ok {
				continue
			}
			d.TOTP.LastStep = step
			d.LastUsed = now
			accepted = d.ID
			return nil
		}
		return flowengine.ErrNoChange
	})
	if err != nil {
		return nil, fmt.Errorf("checking TOTP code: %w", err)
	}
	if accepted == "" {
		if sealErr != nil {
			return nil, fmt.Errorf("checking TOTP code: %w", sealErr)
		}
		return nil, nil
	}
	return u.Device(accepted), nil
}

// checkStatic: see above. A device whose last code is used stays (empty):
// removing it would make the user look as if they had no second factor, and a
// not_configured_action skip would then let them in without one.
func checkStatic(ctx context.Context, sc *flowengine.StageContext, userID, code string) (*flowengine.Device, error) {
	code = normalizeStaticCode(code)
	if code == "" {
		return nil, nil
	}
	now := sc.Clock.Now()
	var accepted string
	u, err := flowengine.ModifyUser(ctx, sc.Store, userID, func(u *flowengine.User) error {
		accepted = ""
		for i := range u.Devices {
			d := &u.Devices[i]
			if d.Class != flowengine.DeviceStatic || d.Static == nil {
				continue
			}
			want := staticHash(d.Static.Salt, code)
			hit := -1
			// Compare with every hash, without stopping early, so the time taken
			// does not tell which code (if any) matched.
			for j, h := range d.Static.Codes {
				if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
					hit = j
				}
			}
			if hit < 0 {
				continue
			}
			d.Static.Codes = append(d.Static.Codes[:hit:hit], d.Static.Codes[hit+1:]...)
			d.LastUsed = now
			accepted = d.ID
			return nil
		}
		return flowengine.ErrNoChange
	})
	if err != nil {
		return nil, fmt.Errorf("checking recovery code: %w", err)
	}
	if accepted == "" {
		return nil, nil
	}
	return u.Device(accepted), nil
}

// totpAAD binds a sealed TOTP secret to its user and device, so a sealed value
// copied onto another record does not open.
func totpAAD(userID, deviceID string) []byte { return []byte(userID + "/" + deviceID) }

// totpAlgorithm maps a device's algorithm name to the library's.
func totpAlgorithm(name string) (otp.Algorithm, error) {
	switch strings.ToUpper(name) {
	case "", "SHA1":
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	case "SHA512":
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("unknown TOTP algorithm %q", name)
}

// totpMatch checks code (digits only) against the steps around now that come
// after dev.LastStep, and returns the latest step it matches. Every candidate
// is computed and compared in constant time.
func totpMatch(secret, code string, now time.Time, dev *flowengine.TOTPDevice) (int64, bool, error) {
	if dev.Period <= 0 || (dev.Digits != 6 && dev.Digits != 8) {
		return 0, false, fmt.Errorf("bad TOTP parameters: %d digits, period %d", dev.Digits, dev.Period)
	}
	alg, err := totpAlgorithm(dev.Algorithm)
	if err != nil {
		return 0, false, err
	}
	current := now.Unix() / int64(dev.Period)
	var best int64
	found := false
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		if step < 0 || step <= dev.LastStep {
			continue // spent: each code works once, and no older one after it
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.Digits(dev.Digits), Algorithm: alg})
		if err != nil {
			return 0, false, fmt.Errorf("computing TOTP code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			best, found = step, true
		}
	}
	return best, found, nil
}

// stripSpaces drops all white space: codes may be typed as "123 456".
func stripSpaces(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// normalizeStaticCode makes a typed recovery code comparable: lower case, no
// spaces or dashes (people group codes when copying them out).
func normalizeStaticCode(s string) string {
	return strings.ReplaceAll(strings.ToLower(stripSpaces(s)), "-", "")
}
