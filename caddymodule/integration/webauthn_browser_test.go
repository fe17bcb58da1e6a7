package integration

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// passkeyFlows: a signed-in user adds a passkey (stage_configuration), a
// passwordless sign-in with the passkey alone, and a step-up that adds the
// passkey to a password session for /admin.
const passkeyFlows = `version: 1
policies:
  - name: admin-passkey
    rego: |
      package flowgate.admin_passkey
      import rego.v1
      default allow := false
      allow if not startswith(input.request.path, "/admin")
      allow if "webauthn" in input.user.auth_methods
stages:
  - name: passkey-stepcheck
    type: authenticator_validate
    config: {device_classes: [webauthn], not_configured_action: deny}
  - name: passkey-setup
    type: authenticator_webauthn
    config: {resident_key_requirement: required, user_verification: required, friendly_name: Test passkey}
  - name: passkey-check
    type: authenticator_validate
    config: {device_classes: [webauthn], webauthn_user_verification: required}
  - {name: passkey-session, type: user_login}
flows:
  - slug: passkey-add
    name: Add a passkey
    designation: stage_configuration
    authentication: require_authenticated
    stages: [{stage: passkey-setup, order: 10}]
  - slug: passkey-login
    name: Sign in with a passkey
    designation: authentication
    stages: [{stage: passkey-check, order: 10}, {stage: passkey-session, order: 20}]
  - slug: passkey-stepup
    name: Confirm with a passkey
    designation: authentication
    authentication: require_authenticated
    order: 100
    stages: [{stage: passkey-stepcheck, order: 10}, {stage: passkey-session, order: 20}]
`

// A real Chromium with a DevTools virtual authenticator (CTAP2, internal,
// resident keys, user verification): alice signs in with her password, adds
// a passkey through the HTML page and webauthn.js, signs out, and signs in
// again with the passkey alone; her new session's auth methods say webauthn.
// Then, signed in with her password only, /admin sends her through the
// passkey step-up and back, her session now holding pwd and webauthn.
func TestBrowserPasskey(t *testing.T) {
	chromiumPath(t)
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("passkeys.yaml", passkeyFlows)
	g.load("", "\t\tpolicy admin-passkey\n\t\tstep_up passkey-stepup")
	b := newTab(t, startChromium(t, 420, 760), 60*time.Second, "", "passkey-")
	do, shot, text, ctx := b.do, b.shot, b.text, b.ctx

	// The tab's virtual authenticator: it answers create() and get() at once,
	// verifying the user, and keeps discoverable credentials.
	var authID webauthn.AuthenticatorID
	do(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol:                    webauthn.AuthenticatorProtocolCtap2,
				Ctap2version:                webauthn.Ctap2versionCtap21,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			},
		})
		authID = res.AuthenticatorID
		return chromedp.Void{}, err
	})
	credentials := func() []*webauthn.Credential {
		t.Helper()
		res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (webauthn.GetCredentialsResult, error) {
			return cdp.Call(ctx, tg, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authID})
		})
		if err != nil {
			t.Fatalf("reading the virtual authenticator: %v", err)
		}
		return res.Credentials
	}

	// Password sign-in, then the passkey page of the configuration flow.
	do(chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(`#f-uid_field`),
		chromedp.SendKeys(`#f-uid_field`, "alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-password`), chromedp.SendKeys(`#f-password`, "pw-alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`pre`))
	do(chromedp.Navigate(base+"/.flowgate/flows/passkey-add/?next=/added"),
		chromedp.WaitVisible(`[data-webauthn="create"] button`), shot("1-create-passkey"),
		chromedp.Click(`[data-webauthn="create"] button`), chromedp.WaitVisible(`pre`))
	if body := text(`pre`); !strings.Contains(body, `"path":"/added"`) {
		t.Fatalf("after adding a passkey:\n%s", body)
	}
	creds := credentials()
	if len(creds) != 1 || !creds[0].IsResidentCredential || string(creds[0].UserHandle) == "" || creds[0].RpID != "localhost" {
		t.Fatalf("virtual authenticator credentials: %+v", creds)
	}
	// A second passkey on the same authenticator: the browser refuses (the
	// first is excluded) and the page says so.
	do(chromedp.Navigate(base+"/.flowgate/flows/passkey-add/"),
		chromedp.WaitVisible(`[data-webauthn="create"] button`), chromedp.Click(`[data-webauthn="create"] button`),
		chromedp.WaitVisible(`.webauthn-error`), shot("2-already-registered"))
	if msg := text(`.webauthn-error`); !strings.Contains(msg, "already holds a passkey") {
		t.Fatalf("refused registration says %q", msg)
	}

	// Signed out, the passkey alone signs alice in.
	do(chromedp.Navigate(base+"/.flowgate/logout"), chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(`#f-uid_field`))
	do(chromedp.Navigate(base+"/.flowgate/flows/passkey-login/?next=/dashboard"),
		chromedp.WaitVisible(`[data-webauthn="get"] button`), shot("3-use-passkey"),
		chromedp.Click(`[data-webauthn="get"] button`), chromedp.WaitVisible(`pre`), shot("4-signed-in"))
	if body := text(`pre`); !strings.Contains(body, `"path":"/dashboard"`) || !strings.Contains(body, `"Remote-User":["alice"]`) {
		t.Fatalf("after the passkey sign-in:\n%s", body)
	}
	if creds := credentials(); len(creds) != 1 || creds[0].SignCount < 2 {
		t.Errorf("after sign-in the passkey's counter is %+v", creds)
	}
	status, body := adminDo(t, "GET", "/flowgate/users/alice/sessions", "", "")
	var sessions []struct {
		Methods []string `json:"auth_methods"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); status != 200 || err != nil {
		t.Fatalf("sessions of alice: %d %v %s", status, err, body)
	}
	if len(sessions) != 1 || !slices.Equal(sessions[0].Methods, []string{"webauthn"}) {
		t.Fatalf("alice's sessions after the passkey sign-in: %s", body)
	}
	// Step-up: signed in again with the password only, /admin needs the
	// passkey; the browser goes through passkey-stepup and comes back.
	do(chromedp.Navigate(base+"/.flowgate/logout"), chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(`#f-uid_field`),
		chromedp.SendKeys(`#f-uid_field`, "alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#f-password`), chromedp.SendKeys(`#f-password`, "pw-alice"), chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`pre`))
	do(chromedp.Navigate(base+"/admin/panel?x=1"), chromedp.WaitVisible(`[data-webauthn="get"] button`), shot("5-step-up"))
	if loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`)); err != nil || loc != "/.flowgate/flows/passkey-stepup/" {
		t.Fatalf("/admin with a password session went to %q (%v), want the step-up flow", loc, err)
	}
	do(chromedp.Click(`[data-webauthn="get"] button`), chromedp.WaitVisible(`pre`), shot("6-admin"))
	if body := text(`pre`); !strings.Contains(body, `"path":"/admin/panel?x=1"`) || !strings.Contains(body, `"Remote-User":["alice"]`) {
		page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("after the step-up:\n%s\npage: %s (%v)", body, page, err)
	}
	status, body = adminDo(t, "GET", "/flowgate/users/alice/sessions", "", "")
	sessions = nil
	if err := json.Unmarshal([]byte(body), &sessions); status != 200 || err != nil {
		t.Fatalf("sessions of alice: %d %v %s", status, err, body)
	}
	if len(sessions) != 1 || !slices.Contains(sessions[0].Methods, "pwd") || !slices.Contains(sessions[0].Methods, "webauthn") {
		t.Fatalf("alice's sessions after the step-up (want one, with pwd and webauthn): %s", body)
	}

}
