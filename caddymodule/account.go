package caddymodule

import (
	"errors"
	"net/http"

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

// account is the signed-in user's page at <prefix>/account: who is signed in,
// the stage configuration (change password) and unenrollment (delete account)
// flows that exist for them, and signing out. Without a session it sends the
// browser to sign in and come back here.
func (h *Handler) account(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.methodNotAllowed(w, r)
	}
	sess, user, err := h.session(r.Context(), r)
	if err != nil {
		h.logger.Error("session lookup failed", zap.Error(err))
		return h.unavailable(w, r)
	}
	self := h.Prefix + "/account"
	if sess == nil || user == nil {
		http.Redirect(w, r, h.signInURL(self), http.StatusFound)
		return nil
	}
	p := h.basePage()
	p.Title, p.User = "Your account", user.Username
	p.Data = map[string]any{"username": user.Username, "email": user.Email, "name": user.Name}
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
		u := h.flowURL(slug)
		if f.d == flowengine.DesignationStageConfiguration {
			u = restartURL(u, self) // back here when done
		}
		p.Links = append(p.Links, templates.Link{URL: u, Label: f.label})
	}
	p.Links = append(p.Links, templates.Link{URL: h.Prefix + "/logout", Label: "Sign out"})
	return h.render(w, http.StatusOK, "account", p)
}
