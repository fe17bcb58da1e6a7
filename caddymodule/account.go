package caddymodule

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/templates"
)

// accountFlows are the self-service flows the account page links to, in order.
var accountFlows = []struct {
	d     flowengine.Designation
	label string
}{
	{flowengine.DesignationStageConfiguration, "Change password"},
	{flowengine.DesignationUnenrollment, "Delete account"},
}

// setupStageTypes are the stage types that set up a second factor: a
// stage_configuration flow with one of them is offered as an MFA setup.
var setupStageTypes = []string{"authenticator_totp", "authenticator_static", "authenticator_webauthn"}

// deviceClassLabels name the device classes for people.
var deviceClassLabels = map[string]string{
	flowengine.DeviceTOTP:     "Authenticator app",
	flowengine.DeviceStatic:   "Recovery codes",
	flowengine.DeviceWebAuthn: "Passkey or security key",
}

// accountDevice is a device as the account page shows it (no secrets).
type accountDevice struct {
	ID, Name, Class, Created, LastUsed string
}

// account is the signed-in user's page at <prefix>/account: who is signed in,
// their second factors (each with a Remove button when the session proved
// one; else a link to the step-up flow, if the site has one), links to set up more (the
// stage_configuration flows with an authenticator setup stage), the password
// change (the other stage_configuration flow) and unenrollment flows that
// exist for them, and signing out. Without a session it sends the browser to
// sign in and come back here. POST removes a device.
func (h *Handler) account(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return h.methodNotAllowed(w, r)
	}
	sess, user, err := h.session(r.Context(), r)
	if err != nil {
		h.logger.Error("session lookup failed", zap.Error(err))
		return h.unavailable(w, r)
	}
	self := h.Prefix + "/account"
	if sess == nil || user == nil {
		if r.Method == http.MethodPost {
			return h.renderStatus(w, r, http.StatusForbidden, "error", "You are not signed in any more.",
				templates.Link{URL: h.signInURL(self), Label: "Sign in"})
		}
		http.Redirect(w, r, h.signInURL(self), http.StatusFound)
		return nil
	}
	if r.Method == http.MethodPost {
		return h.accountPost(w, r, sess, user)
	}
	p := h.basePage()
	p.Title, p.User = "Your account", user.Username
	p.Action, p.CSRFToken = self, h.accountToken(sess)
	data := map[string]any{"username": user.Username, "email": user.Email, "name": user.Name}
	p.Data = data
	var devices []accountDevice
	for _, d := range deviceViews(user) {
		class := deviceClassLabels[d.Class]
		if class == "" {
			class = d.Class
		}
		lastUsed := "never"
		if !d.LastUsed.IsZero() {
			lastUsed = d.LastUsed.UTC().Format("2006-01-02 15:04 UTC")
		}
		devices = append(devices, accountDevice{ID: d.ID, Name: d.Name, Class: class,
			Created: d.Created.UTC().Format("2006-01-02 15:04 UTC"), LastUsed: lastUsed})
	}
	if len(devices) > 0 {
		data["devices"] = devices
		if !hasSecondFactor(sess) {
			// No Remove buttons: see accountPost.
			data["devices_locked"] = true
			if h.StepUp != "" {
				data["step_up"] = h.stepUpURL(self)
			}
		}
	}
	setup, other := h.stageFlows()
	var links []templates.Link
	for _, f := range setup {
		label := f.Title
		if label == "" {
			label = f.Name
		}
		if label == "" {
			label = f.Slug
		}
		links = append(links, templates.Link{URL: restartURL(h.flowURL(f.Slug), self), Label: label})
	}
	if len(links) > 0 {
		data["setup"] = links
	}
	req := h.flowRequest(r, sess, user)
	for _, f := range accountFlows {
		slug := h.Flows[string(f.d)]
		if slug == "" {
			found, err := h.app.engine.FindFlow(r.Context(), f.d, req)
			if errors.Is(err, flowengine.ErrNoFlow) {
				continue
			}
			if err != nil {
				return h.flowError(w, r, err, true)
			}
			slug = found.Slug
		}
		if f.d == flowengine.DesignationStageConfiguration && slices.ContainsFunc(setup, func(s *flowengine.Flow) bool { return s.Slug == slug }) {
			// Selection chose an MFA setup (it is linked above): the password
			// change is the first other stage configuration flow, if any.
			if len(other) == 0 {
				continue
			}
			slug = other[0].Slug
		}
		u := h.flowURL(slug)
		if f.d == flowengine.DesignationStageConfiguration {
			u = restartURL(u, self) // back here when done
		}
		p.Links = append(p.Links, templates.Link{URL: u, Label: f.label})
	}
	p.Links = append(p.Links, templates.Link{URL: h.Prefix + "/logout", Label: "Sign out"})
	return h.render(w, http.StatusOK, "account", p)
}

// accountPost removes one of the signed-in user's devices: a form carrying
// the page's CSRF token (bound to the session) from this site only.
func (h *Handler) accountPost(w http.ResponseWriter, r *http.Request, sess *flowengine.Session, user *flowengine.User) error {
	self := h.Prefix + "/account"
	back := templates.Link{URL: self, Label: "Back to your account"}
	if !sameOrigin(r) {
		return h.renderStatus(w, r, http.StatusForbidden, "error", "This form was sent from another site and was refused.", back)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFlowBody)
	if err := r.ParseForm(); err != nil {
		return h.renderStatus(w, r, http.StatusBadRequest, "error", "The form could not be read.", back)
	}
	if !h.validAccountToken(r.PostForm.Get("csrf_token"), sess) {
		return h.renderStatus(w, r, http.StatusForbidden, "error", "This form has expired. Go back, reload the page and try again.", back)
	}
	if r.PostForm.Get("action") != "remove_device" || r.PostForm.Get("device") == "" {
		return h.renderStatus(w, r, http.StatusBadRequest, "error", "The form did not match this page.", back)
	}
	if !hasSecondFactor(sess) {
		// Whoever has only the password (a phished one, a session left open)
		// must not remove the factors that guard the rest: with none left, they
		// could set up their own and pass any second-factor policy.
		return h.renderStatus(w, r, http.StatusForbidden, "error", "Sign in with a second factor to remove one.", back)
	}
	id := r.PostForm.Get("device")
	removed, err := h.app.removeDevices(r.Context(), user, id)
	switch {
	case errors.Is(err, errNoDevice):
		// Removed meanwhile (another tab, an operator): nothing left to do.
		http.Redirect(w, r, self, http.StatusSeeOther)
		return nil
	case err != nil:
		h.logger.Error("removing a device failed", zap.String("user", user.Username), zap.Error(err))
		return h.unavailable(w, r)
	}
	for _, d := range removed {
		h.app.audit(auditDeviceRemoved, zap.String("via", "account"), zap.String("user", user.Username), zap.String("user_id", user.ID),
			zap.String("client_ip", h.flowRequest(r, sess, user).ClientIP), zap.String("device", d.ID), zap.String("class", d.Class))
	}
	http.Redirect(w, r, self, http.StatusSeeOther)
	return nil
}

// hasSecondFactor: the session proved a second factor (or a passkey).
func hasSecondFactor(sess *flowengine.Session) bool {
	return slices.ContainsFunc(sess.AuthMethods, func(m string) bool { return slices.Contains(mfaMethods, m) })
}

// accountTokenName is the securecookie name the account page's CSRF token is
// sealed under (never a cookie: it only keeps the token apart from others).
const accountTokenName = "flowgate_account_form"

// accountToken is the account page's CSRF token: a hash of the session ID,
// sealed with the cookie keys. Only the gateway can make one, it is worth
// nothing for another session (a new one at every sign-in), and it does not
// give the session ID away.
func (h *Handler) accountToken(sess *flowengine.Session) string {
	v, err := h.app.cookies.Encode(accountTokenName, accountTokenSum(sess))
	if err != nil {
		return ""
	}
	return v
}

func (h *Handler) validAccountToken(token string, sess *flowengine.Session) bool {
	if token == "" {
		return false
	}
	got, ok := h.app.cookies.Decode(accountTokenName, token)
	return ok && subtle.ConstantTimeCompare(got, accountTokenSum(sess)) == 1
}

func accountTokenSum(sess *flowengine.Session) []byte {
	sum := sha256.Sum256([]byte("flowgate account form\x00" + sess.ID))
	return sum[:]
}

// stageFlows are the live stage_configuration flows in selection order
// (operators' before built-in ones, then order, then slug), split into those
// that set up a second factor (a stage of a setup type) and the others.
func (h *Handler) stageFlows() (setup, other []*flowengine.Flow) {
	cfg := h.app.engine.Config()
	types := make(map[string]string, len(cfg.Stages))
	for _, s := range cfg.Stages {
		types[s.Name] = s.Type
	}
	var flows []*flowengine.Flow
	for i := range cfg.Flows {
		if f := &cfg.Flows[i]; f.Designation == flowengine.DesignationStageConfiguration {
			flows = append(flows, f)
		}
	}
	slices.SortStableFunc(flows, func(a, b *flowengine.Flow) int {
		switch {
		case a.BuiltIn != b.BuiltIn:
			if a.BuiltIn {
				return 1
			}
			return -1
		case a.Order != b.Order:
			return a.Order - b.Order
		}
		return strings.Compare(a.Slug, b.Slug)
	})
	for _, f := range flows {
		isSetup := slices.ContainsFunc(f.Stages, func(b flowengine.StageBinding) bool {
			return slices.Contains(setupStageTypes, types[b.Stage])
		})
		if isSetup {
			setup = append(setup, f)
		} else {
			other = append(other, f)
		}
	}
	return setup, other
}
