package stages

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("authenticator_totp", newAuthenticatorTOTP) }

// TOTPConfig configures the authenticator_totp stage, which sets up an
// authenticator app (RFC 6238) for the pending user.
type TOTPConfig struct {
	// Digits is the length of a code, 6 or 8 (default 6).
	Digits int `json:"digits,omitempty"`
	// Period is how many seconds a code lasts (default 30; most apps know only 30).
	Period int `json:"period,omitempty"`
	// FriendlyName names the device in the user's list of devices (default
	// "Authenticator app").
	FriendlyName string `json:"friendly_name,omitempty"`
	// Issuer is the name the app shows beside the account (default: the
	// request's host without the port).
	Issuer string `json:"issuer,omitempty"`
	// ConfigureFlow is accepted for authentik exports and has no effect.
	ConfigureFlow string `json:"configure_flow,omitempty"`
}

// State keys of the stage: the user the secret was made for, the device ID
// it will be saved under, and the secret sealed for that user and device
// (the same sealed value the device keeps, so a store dump shows no secret).
const (
	stateTOTPUser   = "user"
	stateTOTPDevice = "device_id"
	stateTOTPSecret = "secret"
)

const (
	totpCodeField = "code"
	// totpSecretSize is 160 bits, RFC 4226's recommended length.
	totpSecretSize = 20
	// totpQRSize is the QR image's width and height in pixels.
	totpQRSize    = 200
	maxTOTPPeriod = 300
)

type authenticatorTOTP struct {
	digits, period int
	name, issuer   string
}

func newAuthenticatorTOTP(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg TOTPConfig
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	s := &authenticatorTOTP{digits: 6, period: 30, name: "Authenticator app", issuer: cfg.Issuer}
	switch cfg.Digits {
	case 0:
	case 6, 8:
		s.digits = cfg.Digits
	default:
		return nil, fmt.Errorf("digits: must be 6 or 8, not %d", cfg.Digits)
	}
	if cfg.Period != 0 {
		if cfg.Period < 1 || cfg.Period > maxTOTPPeriod {
			return nil, fmt.Errorf("period: must be between 1 and %d seconds", maxTOTPPeriod)
		}
		s.period = cfg.Period
	}
	if cfg.FriendlyName != "" {
		s.name = cfg.FriendlyName
	}
	// The otpauth URL's label is "issuer:account": a colon in the issuer
	// would make apps split it in the wrong place.
	if strings.Contains(s.issuer, ":") {
		return nil, errors.New("issuer: must not contain a colon")
	}
	return s, nil
}

func (s *authenticatorTOTP) Challenge(ctx context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	u, _, err := mfaSetupUser(ctx, sc)
	if err != nil || u == nil {
		return nil, err // no user: nothing to show, Submit denies at once
	}
	p, err := s.pending(sc, u.ID)
	if err != nil {
		return nil, err
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(p.secret)
	if err != nil {
		return nil, fmt.Errorf("decoding TOTP secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.issuerFor(sc), AccountName: u.Username, Period: uint(s.period),
		Digits: otp.Digits(s.digits), Algorithm: otp.AlgorithmSHA1, Secret: raw,
	})
	if err != nil {
		return nil, fmt.Errorf("making otpauth URL: %w", err)
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return nil, fmt.Errorf("drawing TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding TOTP QR code: %w", err)
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{{
			Key: totpCodeField, Type: flowengine.FieldCode, Label: "Code", Required: true,
			Autocomplete: "one-time-code", Placeholder: strings.Repeat("0", s.digits),
			SubText: fmt.Sprintf("The %d-digit code your app shows now.", s.digits),
		}},
		Messages: []string{"Scan the QR code with your authenticator app (or type in the key), " +
			"then enter the code it shows."},
		Data: map[string]any{
			"secret":      key.Secret(),
			"otpauth_url": key.URL(),
			"qr_png":      "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		},
	}, nil
}

func (s *authenticatorTOTP) Submit(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (flowengine.Outcome, error) {
	u, deny, err := mfaSetupUser(ctx, sc)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if u == nil {
		return flowengine.Deny(deny), nil
	}
	p, err := s.pending(sc, u.ID)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if p.fresh {
		// An answer to a secret never shown (the state was lost, or is
		// another user's): show the new one.
		return flowengine.Invalid(nil, "Set up your app with the key shown, then enter its code."), nil
	}
	code := stripSpaces(answer[totpCodeField])
	if len(code) != s.digits || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return flowengine.Invalid(map[string][]string{totpCodeField: {fmt.Sprintf("Enter the %d-digit code your app shows.", s.digits)}}), nil
	}
	now := sc.Clock.Now()
	dev := flowengine.Device{
		ID: p.deviceID, Class: flowengine.DeviceTOTP, Name: s.name, CreatedAt: now,
		TOTP: &flowengine.TOTPDevice{Secret: p.sealed, Digits: s.digits, Period: s.period, Algorithm: "SHA1"},
	}
	step, ok, err := totpMatch(p.secret, code, now, dev.TOTP)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if !ok {
		return flowengine.Invalid(map[string][]string{totpCodeField: {"That code is not right. Check the time on your device and try again."}}), nil
	}
	// The code just typed is spent: it cannot sign in a second time.
	dev.TOTP.LastStep = step
	_, err = flowengine.ModifyUser(ctx, sc.Store, u.ID, func(u *flowengine.User) error {
		if u.Device(dev.ID) != nil {
			return flowengine.ErrNoChange // saved by an earlier answer
		}
		u.Devices = append(u.Devices, dev)
		return nil
	})
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return flowengine.Deny(msgAccountGone), nil
	case err != nil:
		return flowengine.Outcome{}, fmt.Errorf("saving TOTP device: %w", err)
	}
	clear(sc.State)
	sc.AddAuthMethod(flowengine.MethodOTP)
	return flowengine.Continue(), nil
}

// totpPending is the secret being set up in this execution: base32, sealed
// for the user and the device it will be saved as.
type totpPending struct {
	secret, deviceID, sealed string
	fresh                    bool // made just now: not shown to the user yet
}

// pending returns this execution's new secret for the user, making it the
// first time, so the page shows the same secret however often it is loaded.
func (s *authenticatorTOTP) pending(sc *flowengine.StageContext, userID string) (totpPending, error) {
	box := sc.Services.Secrets
	if box == nil {
		// Storing a TOTP secret in the clear would hand it to anyone with a
		// copy of the store; refuse the setup instead.
		return totpPending{}, fmt.Errorf("authenticator_totp cannot set up TOTP: %w", errNoSecrets)
	}
	p := totpPending{}
	p.deviceID, _ = sc.State[stateTOTPDevice].(string)
	p.sealed, _ = sc.State[stateTOTPSecret].(string)
	if sc.State[stateTOTPUser] == userID && p.deviceID != "" && p.sealed != "" {
		// A secret sealed under keys since rotated away does not open: make a
		// new one, as if the page were shown for the first time.
		if plain, err := box.Open(p.sealed, totpAAD(userID, p.deviceID)); err == nil {
			p.secret = string(plain)
			return p, nil
		}
	}
	raw := make([]byte, totpSecretSize)
	if _, err := rand.Read(raw); err != nil {
		return totpPending{}, fmt.Errorf("making TOTP secret: %w", err)
	}
	p = totpPending{
		secret:   base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw),
		deviceID: flowengine.NewID(),
		fresh:    true,
	}
	sealed, err := box.Seal([]byte(p.secret), totpAAD(userID, p.deviceID))
	if err != nil {
		return totpPending{}, fmt.Errorf("sealing TOTP secret: %w", err)
	}
	p.sealed = sealed
	clear(sc.State)
	sc.State[stateTOTPUser] = userID
	sc.State[stateTOTPDevice] = p.deviceID
	sc.State[stateTOTPSecret] = p.sealed
	return p, nil
}

// issuerFor is the configured issuer, else the request's host without port.
func (s *authenticatorTOTP) issuerFor(sc *flowengine.StageContext) string {
	if s.issuer != "" {
		return s.issuer
	}
	host := ""
	if sc.Request != nil {
		host = sc.Request.Host
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.Contains(host, ":") {
		return "flowgate" // no host, or an IPv6 address apps would misread
	}
	return host
}
