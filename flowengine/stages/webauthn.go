package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/flowgate/flowgate/flowengine"
)

// Shared by authenticator_webauthn (registration) and authenticator_validate
// (assertion): the relying party, the adapter that shows a flowgate user to
// the WebAuthn library, and the ceremony kept in the stage's State between the
// page that asks and the answer.

// credentialField is the hidden field that carries the browser's
// PublicKeyCredential as JSON (base64url binary fields).
const credentialField = "credential"

// ceremonyTimeout is how long a WebAuthn challenge may be answered; the
// browser is told the same. An older challenge is replaced by a fresh one.
const ceremonyTimeout = 5 * time.Minute

// State keys of the ceremony in progress.
const (
	stateWASession = "webauthn_session" // the library's SessionData, as JSON
	stateWAOptions = "webauthn_options" // the options shown, as JSON
	stateWAIssued  = "webauthn_issued"  // when they were made (Unix seconds, stage clock)
)

// Refusals a visitor may see.
const (
	waUnreadable  = "The passkey answer could not be read. Try again."
	waStale       = "This passkey answer belongs to an earlier request. Try again."
	waOrigin      = "This passkey answer was made for another site."
	waNotVerified = "The passkey could not be verified. Try again."
)

// RelyingPartyConfig is the WebAuthn relying party, shared by the passkey
// stages' configs.
type RelyingPartyConfig struct {
	// RelyingPartyID is the domain passkeys are bound to (default: the request
	// host without port). A parent domain (example.com for login.example.com)
	// lets passkeys work on every subdomain.
	RelyingPartyID string `json:"relying_party_id,omitempty"`
	// Origins are the page origins (scheme://host[:port]) answers may come from
	// (default: the request's own). Set them when a proxy in front changes
	// the scheme or host the gateway sees.
	Origins []string `json:"origins,omitempty"`
}

// check validates the configured relying party at load.
func (c RelyingPartyConfig) check() error {
	if c.RelyingPartyID != "" {
		if err := protocol.ValidateRPID(c.RelyingPartyID); err != nil {
			return fmt.Errorf("relying_party_id: %q: %w", c.RelyingPartyID, err)
		}
		if strings.ContainsAny(c.RelyingPartyID, ":/") {
			return fmt.Errorf("relying_party_id: %q is not a domain", c.RelyingPartyID)
		}
	}
	for _, o := range c.Origins {
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.Count(o, "/") != 2 {
			return fmt.Errorf("origins: %q is not scheme://host[:port]", o)
		}
	}
	return nil
}

// relyingParty returns the WebAuthn library configured for this request: the
// configured relying party, else the request's host and origin.
func (c RelyingPartyConfig) relyingParty(sc *flowengine.StageContext, uv protocol.UserVerificationRequirement) (*webauthn.WebAuthn, error) {
	rpID, origins := c.RelyingPartyID, c.Origins
	if rpID == "" || len(origins) == 0 {
		if sc.Request == nil || sc.Request.Host == "" {
			return nil, errors.New("webauthn: no request host to take the relying party from")
		}
		host := sc.Request.Host
		if rpID == "" {
			rpID = strings.ToLower(hostWithoutPort(host))
		}
		if len(origins) == 0 {
			scheme := sc.Request.Scheme
			if scheme == "" {
				scheme = "https"
			}
			origins = []string{scheme + "://" + strings.ToLower(host)}
		}
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpID,
		RPOrigins:     origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			UserVerification: uv,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party %q: %w", rpID, err)
	}
	return wa, nil
}

// hostWithoutPort strips a port from a Host header (IPv6 brackets too).
func hostWithoutPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// userVerification reads a user_verification setting ("" is preferred).
func userVerification(key, v string) (protocol.UserVerificationRequirement, error) {
	switch protocol.UserVerificationRequirement(v) {
	case "":
		return protocol.VerificationPreferred, nil
	case protocol.VerificationRequired, protocol.VerificationPreferred, protocol.VerificationDiscouraged:
		return protocol.UserVerificationRequirement(v), nil
	}
	return "", fmt.Errorf("%s: %q is not required, preferred or discouraged", key, v)
}

// waUser shows a flowgate user and their passkeys to the WebAuthn library.
// The user handle is the user ID, so a discoverable passkey names its account.
type waUser struct {
	user  *flowengine.User
	creds []webauthn.Credential
}

// newWAUser loads the user's WebAuthn credentials; a device whose stored
// credential does not decode is left out (it can sign nobody in).
func newWAUser(u *flowengine.User) *waUser {
	w := &waUser{user: u}
	for _, d := range u.DevicesOf(flowengine.DeviceWebAuthn) {
		if d.WebAuthn == nil {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal(d.WebAuthn.Credential, &c); err != nil || len(c.ID) == 0 {
			continue
		}
		w.creds = append(w.creds, c)
	}
	return w
}

func (w *waUser) WebAuthnID() []byte   { return []byte(w.user.ID) }
func (w *waUser) WebAuthnName() string { return w.user.Username }
func (w *waUser) WebAuthnDisplayName() string {
	if w.user.Name != "" {
		return w.user.Name
	}
	return w.user.Username
}
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// owns reports whether the user has a passkey with this credential ID.
func (w *waUser) owns(id []byte) bool {
	return slices.ContainsFunc(w.creds, func(c webauthn.Credential) bool { return bytes.Equal(c.ID, id) })
}

// descriptors lists the user's passkeys as the options name them.
func (w *waUser) descriptors() []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(w.creds))
	for i := range w.creds {
		out = append(out, w.creds[i].Descriptor())
	}
	return out
}

// saveCeremony keeps the library's session and the options shown in the
// stage's State and returns the options as JSON for the challenge's data.
func saveCeremony(sc *flowengine.StageContext, options any, session *webauthn.SessionData) (json.RawMessage, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn options: %w", err)
	}
	sess, err := json.Marshal(session)
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn session: %w", err)
	}
	sc.State[stateWASession] = string(sess)
	sc.State[stateWAOptions] = string(opts)
	sc.State[stateWAIssued] = int(sc.Clock.Now().Unix())
	return opts, nil
}

// currentCeremony returns the options of the ceremony in progress, if one is
// stored, still fresh, and was begun for userID ("" for a discoverable login),
// so that showing the page twice shows the same challenge.
func currentCeremony(sc *flowengine.StageContext, userID string) (json.RawMessage, bool) {
	sess, ok := ceremonySession(sc)
	if !ok || string(sess.UserID) != userID {
		return nil, false
	}
	opts, _ := sc.State[stateWAOptions].(string)
	if opts == "" {
		return nil, false
	}
	return json.RawMessage(opts), true
}

// ceremonySession reads the stored session if it is still fresh.
func ceremonySession(sc *flowengine.StageContext) (*webauthn.SessionData, bool) {
	raw, _ := sc.State[stateWASession].(string)
	if raw == "" {
		return nil, false
	}
	issued := time.Unix(int64(intState(sc.State[stateWAIssued])), 0)
	if sc.Clock.Now().Sub(issued) >= ceremonyTimeout {
		return nil, false
	}
	var s webauthn.SessionData
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Challenge == "" {
		return nil, false
	}
	return &s, true
}

// takeCeremony retires the ceremony in progress and returns its session, if
// still fresh: every answer, right or wrong, spends the challenge, so an
// answer cannot be replayed nor a wrong one retried against it.
func takeCeremony(sc *flowengine.StageContext) (*webauthn.SessionData, bool) {
	s, ok := ceremonySession(sc)
	delete(sc.State, stateWASession)
	delete(sc.State, stateWAOptions)
	delete(sc.State, stateWAIssued)
	return s, ok
}

// checkClientData gives a clear refusal for the two commonest wrong answers
// before the library verifies everything: an answer to another challenge (an
// earlier page, another execution) and one made on another site. The library
// checks both again.
func checkClientData(cd protocol.CollectedClientData, session *webauthn.SessionData, wa *webauthn.WebAuthn) string {
	if cd.Challenge != session.Challenge {
		return waStale
	}
	if !slices.ContainsFunc(wa.Config.RPOrigins, func(o string) bool { return strings.EqualFold(o, cd.Origin) }) {
		return waOrigin
	}
	return ""
}

// errCredentialGone: the passkey was removed while it was being used.
var errCredentialGone = errors.New("the passkey is no longer registered")

// recordWebAuthnUse writes the credential's new sign count and flags and the
// device's last use onto the user.
func recordWebAuthnUse(ctx context.Context, sc *flowengine.StageContext, userID string, cred *webauthn.Credential) error {
	raw, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("encoding webauthn credential: %w", err)
	}
	now := sc.Clock.Now()
	_, err = flowengine.ModifyUser(ctx, sc.Store, userID, func(u *flowengine.User) error {
		for i := range u.Devices {
			d := &u.Devices[i]
			if d.Class == flowengine.DeviceWebAuthn && d.WebAuthn != nil && bytes.Equal(d.WebAuthn.CredentialID, cred.ID) {
				d.WebAuthn.Credential = raw
				d.LastUsed = now
				return nil
			}
		}
		return errCredentialGone
	})
	return err
}
