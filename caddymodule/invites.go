package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
)

// inviteRequest is the body of POST /flowgate/invites.
type inviteRequest struct {
	// Flow is the slug of the flow the invitation opens (required).
	Flow string `json:"flow"`
	// Expires is how long the invitation is valid, a Go duration (default 72h).
	Expires   string         `json:"expires,omitempty"`
	SingleUse bool           `json:"single_use,omitempty"`
	Email     string         `json:"email,omitempty"`
	FixedData map[string]any `json:"fixed_data,omitempty"`
}

// inviteView is an invitation as the admin API shows it, with its link.
type inviteView struct {
	*flowengine.Invitation
	// URL is the path of the link, under the default prefix /.flowgate; a
	// handler with another prefix serves it under its own.
	URL string `json:"url"`
}

const defaultInviteExpiry = 72 * time.Hour

func inviteURL(inv *flowengine.Invitation) string {
	return "/.flowgate/flows/" + url.PathEscape(inv.Flow) + "/?itoken=" + url.QueryEscape(inv.ID)
}

// adminInvites serves /flowgate/invites[/<id>].
func adminInvites(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App) error {
	segs, err := adminPathSegments(r)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	rest := segs[1:] // after "invites"
	now := time.Now().UTC()
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		list, err := flowengine.ListInvitations(ctx, app.store, now)
		if err != nil {
			return apiErr(http.StatusServiceUnavailable, "listing invitations: %v", err)
		}
		out := make([]inviteView, 0, len(list))
		for _, inv := range list {
			out = append(out, inviteView{inv, inviteURL(inv)})
		}
		return writeJSON(w, http.StatusOK, out)
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in inviteRequest
		if err := decodeAdminJSON(w, r, &in); err != nil {
			return err
		}
		in.Flow, in.Email = strings.TrimSpace(in.Flow), strings.TrimSpace(in.Email)
		if in.Flow == "" {
			return apiErr(http.StatusBadRequest, "flow is required")
		}
		if _, err := app.engine.Flow(in.Flow); err != nil {
			return apiErr(http.StatusNotFound, "no flow %q", in.Flow)
		}
		if err := flowengine.CheckEmail(in.Email); err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		ttl := defaultInviteExpiry
		if in.Expires != "" {
			d, err := time.ParseDuration(in.Expires)
			if err != nil || d <= 0 {
				return apiErr(http.StatusBadRequest, "expires: %q is not a positive duration such as 72h", in.Expires)
			}
			ttl = d
		}
		inv := &flowengine.Invitation{ID: flowengine.NewID(), Flow: in.Flow, ExpiresAt: now.Add(ttl), SingleUse: in.SingleUse,
			Email: in.Email, FixedData: in.FixedData, CreatedAt: now}
		if err := flowengine.CreateInvitation(ctx, app.store, inv, now); err != nil {
			return apiErr(http.StatusServiceUnavailable, "creating invitation: %v", err)
		}
		app.audit(auditInviteCreated, viaAdmin, zap.String("flow", inv.Flow), zap.Time("expires_at", inv.ExpiresAt),
			zap.Bool("single_use", inv.SingleUse))
		return writeJSON(w, http.StatusCreated, inviteView{inv, inviteURL(inv)})
	case len(rest) == 1 && r.Method == http.MethodDelete:
		err := flowengine.DeleteInvitation(ctx, app.store, rest[0], now)
		if errors.Is(err, flowengine.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no live invitation %q", rest[0])
		}
		if err != nil {
			return apiErr(http.StatusServiceUnavailable, "revoking invitation: %v", err)
		}
		app.audit(auditInviteRevoked, viaAdmin)
		return writeJSON(w, http.StatusOK, map[string]string{"revoked": rest[0]})
	}
	return apiErr(http.StatusNotFound, "no such flowgate admin endpoint: %s %s", r.Method, r.URL.Path)
}
