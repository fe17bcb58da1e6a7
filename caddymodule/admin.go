package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves flowgate's operations on Caddy's admin endpoint under /flowgate/:
// flows (list, export, import, delete) and users (list, add, change, password,
// delete, sessions, revoke one or all, unlock, MFA devices: list, reset). It acts on the running flowgate app.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.flowgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/flowgate/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

const maxImportBody = blueprint.MaxSize

func apiErr(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	app := current.Load()
	if app == nil {
		return apiErr(http.StatusServiceUnavailable, "the flowgate app is not running")
	}
	if !app.ready.Load() {
		return apiErr(http.StatusServiceUnavailable, "the flowgate store is unreachable")
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/flowgate/"), "/"), "/")
	ctx := r.Context()
	switch {
	case len(parts) == 1 && parts[0] == "flows" && r.Method == http.MethodGet:
		return adminListFlows(ctx, w, app)
	case len(parts) == 3 && parts[0] == "flows" && parts[2] == "export" && r.Method == http.MethodGet:
		format := blueprint.Format(r.URL.Query().Get("format"))
		out, err := blueprint.Export(app.engine.Config(), format, parts[1])
		if errors.Is(err, flowengine.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no flow %q", parts[1])
		}
		if err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		return writeBlueprint(w, format, out)
	case len(parts) == 2 && parts[0] == "flows" && r.Method == http.MethodDelete:
		return adminDeleteFlow(ctx, w, app, parts[1])
	case len(parts) == 1 && parts[0] == "config" && r.Method == http.MethodGet:
		return adminConfig(w, r, app)
	case len(parts) == 1 && parts[0] == "import" && r.Method == http.MethodPost:
		return adminImport(ctx, w, r, app)
	case len(parts) == 1 && parts[0] == "explain" && r.Method == http.MethodPost:
		return adminExplain(ctx, w, r, app)
	case parts[0] == "users":
		return adminUsers(ctx, w, r, app)
	case parts[0] == "invites":
		return adminInvites(ctx, w, r, app)
	}
	return apiErr(http.StatusNotFound, "no such flowgate admin endpoint: %s %s", r.Method, r.URL.Path)
}

// adminListFlows lists the live flows. selected marks, per designation, the
// flow that /.flowgate/default/<designation>/ chooses for an anonymous visitor
// asking for GET / (flow policies that look at the request — its IP, host or
// headers — may choose another for a real one: explain shows why); builtin
// marks the embedded default flows.
func adminListFlows(ctx context.Context, w http.ResponseWriter, app *App) error {
	type item struct {
		Slug        string `json:"slug"`
		Name        string `json:"name"`
		Title       string `json:"title"`
		Designation string `json:"designation"`
		Order       int    `json:"order"`
		Stages      int    `json:"stages"`
		BuiltIn     bool   `json:"builtin"`
		Selected    bool   `json:"selected"`
	}
	selected := selectedFlows(ctx, app.engine)
	var out []item
	for _, f := range app.engine.Config().Flows {
		out = append(out, item{f.Slug, f.Name, f.Title, string(f.Designation), f.Order, len(f.Stages),
			f.BuiltIn, selected[f.Designation] == f.Slug})
	}
	return writeJSON(w, http.StatusOK, out)
}

// selectedFlows returns, per designation, the slug of the flow that selection
// by designation (Engine.FindFlow's) picks for an anonymous request for GET /
// with no session or user; a designation with no applicable flow, or whose
// selection stops on a failing policy, has none. It asks through Explain,
// which runs that same selection without reporting anything: listing flows
// must not count policy evaluations in the metrics or write audit entries.
func selectedFlows(ctx context.Context, engine *flowengine.Engine) map[flowengine.Designation]string {
	out := map[flowengine.Designation]string{}
	for _, d := range flowengine.Designations {
		x, err := engine.Explain(ctx, flowengine.ExplainQuery{Designation: string(d)})
		if err == nil && x.Selection != nil && x.Selection.Chosen != "" {
			out[d] = x.Selection.Chosen
		}
	}
	return out
}

// adminDeleteFlow removes one flow (404 if there is none). Its stages and
// policies stay: other flows may use them.
func adminDeleteFlow(ctx context.Context, w http.ResponseWriter, app *App, slug string) error {
	err := app.engine.DeleteFlow(ctx, slug)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return apiErr(http.StatusNotFound, "no flow %q", slug)
	case errors.Is(err, flowengine.ErrUnavailable):
		return apiErr(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, flowengine.ErrStale):
		return apiErr(http.StatusConflict, "%v", err)
	case err != nil:
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	app.audit(auditFlowDeleted, viaAdmin, zap.String("flow", slug))
	return writeJSON(w, http.StatusOK, map[string]string{"deleted": slug})
}

// adminImport applies a blueprint (YAML or JSON body) live; a rejected one changes
// nothing and answers 400 with the error (503 if the store is down, 409 if other
// replicas kept changing the configuration through every retry).
func adminImport(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		return apiErr(http.StatusRequestEntityTooLarge, "blueprint over %d bytes", maxImportBody)
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "import"
	}
	bp, err := blueprint.Parse(name, body)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	if err := bp.Apply(ctx, app.engine); err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, flowengine.ErrUnavailable):
			status = http.StatusServiceUnavailable
		case errors.Is(err, flowengine.ErrStale):
			status = http.StatusConflict
		}
		return apiErr(status, "%v", err)
	}
	app.audit(auditConfigImported, viaAdmin, zap.String("blueprint", name), zap.Int("flows", len(bp.Config.Flows)),
		zap.Int("stages", len(bp.Config.Stages)), zap.Int("policies", len(bp.Config.Policies)), zap.Int("users", len(bp.Users)))
	return writeJSON(w, http.StatusOK, map[string]any{"imported": name, "flows": len(bp.Config.Flows),
		"stages": len(bp.Config.Stages), "policies": len(bp.Config.Policies), "users": len(bp.Users),
		"warnings": warningStrings(bp.Warnings)})
}

// userView is a user without secrets, as every user route answers it.
type userView struct {
	ID       string    `json:"id"`
	Username string    `json:"username"`
	Email    string    `json:"email,omitempty"`
	Name     string    `json:"name,omitempty"`
	IsActive bool      `json:"is_active"`
	Groups   []string  `json:"groups,omitempty"`
	Created  time.Time `json:"created_at"`
	// Locked: brute-force regulation refuses the account's sign-ins now
	// (POST …/unlock lifts it).
	Locked bool `json:"locked"`
	// LastLogin is the last sign-in (to the minute); absent if never.
	LastLogin time.Time `json:"last_login,omitzero"`
}

// viewUser is u's view, with its lock state read from the regulation counters.
func (a *App) viewUser(ctx context.Context, u *flowengine.User) (userView, error) {
	locked, err := a.regulator.LockedUser(ctx, u)
	if err != nil {
		return userView{}, apiErr(http.StatusServiceUnavailable, "reading lock of %q: %v", u.Username, err)
	}
	return userView{u.ID, u.Username, u.Email, u.Name, u.IsActive, u.Groups, u.CreatedAt, locked, u.LastLogin}, nil
}

// writeUser answers with u's view.
func (a *App) writeUser(ctx context.Context, w http.ResponseWriter, status int, u *flowengine.User) error {
	v, err := a.viewUser(ctx, u)
	if err != nil {
		return err
	}
	return writeJSON(w, status, v)
}

// userPatch is the body of PATCH /flowgate/users/{name}: only the keys given
// change (null is the same as leaving a key out); other keys are refused.
type userPatch struct {
	Email    *string   `json:"email"`
	Name     *string   `json:"name"`
	Groups   *[]string `json:"groups"`
	IsActive *bool     `json:"is_active"`
}

// apply changes u (a copy of the stored user) and returns the names of the
// fields whose value changed.
func (p userPatch) apply(u *flowengine.User) ([]string, error) {
	var changed []string
	if p.Email != nil {
		email := strings.TrimSpace(*p.Email)
		if err := flowengine.CheckEmail(email); err != nil {
			return nil, err
		}
		if email != u.Email {
			u.Email = email
			changed = append(changed, "email")
		}
	}
	if p.Name != nil && *p.Name != u.Name {
		u.Name = *p.Name
		changed = append(changed, "name")
	}
	if p.Groups != nil && !slices.Equal(*p.Groups, u.Groups) {
		u.Groups = append([]string{}, *p.Groups...)
		changed = append(changed, "groups")
	}
	if p.IsActive != nil && *p.IsActive != u.IsActive {
		u.IsActive = *p.IsActive
		changed = append(changed, "is_active")
	}
	return changed, nil
}

// sessionHandle names a session for operators (list, revoke one) without
// giving its ID away: session IDs are bearer secrets, so the handle is the
// first 16 hex characters (64 bits) of SHA-256 over a fixed label and the ID.
// The ID is 256 random bits, so the handle can neither be reversed nor guessed
// back, and it is no credential: it works only through this admin API, which
// can revoke any session anyway. No key is needed for that; the label keeps
// the handle from equalling any other hash of the ID. Being derived from the
// ID alone, a handle is stable across restarts and the same on every replica
// sharing a store, so a list on one and a revoke on another agree.
func sessionHandle(id string) string {
	sum := sha256.Sum256([]byte("flowgate session handle\x00" + id))
	return hex.EncodeToString(sum[:8])
}

type userRequest struct {
	Username string   `json:"username"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Groups   []string `json:"groups"`
	Inactive bool     `json:"inactive"`
}

// adminUsers serves /flowgate/users[/<username>[/password|sessions|unlock|mfa]].
// The path is split before unescaping, so a username holding reserved
// characters (a space, "%", "ü") is reached by its url.PathEscape form.
func adminUsers(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App) error {
	segs, err := adminPathSegments(r)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	rest := segs[1:] // after "users"
	st := app.store
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		users, err := st.ListUsers(ctx)
		if err != nil {
			return apiErr(http.StatusServiceUnavailable, "listing users: %v", err)
		}
		out := make([]userView, 0, len(users))
		for _, u := range users {
			v, err := app.viewUser(ctx, u)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return writeJSON(w, http.StatusOK, out)
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in userRequest
		if err := decodeAdminJSON(w, r, &in); err != nil {
			return err
		}
		// A username must stay one path segment, or the user could be created
		// but never managed through these routes.
		in.Username, in.Email = strings.TrimSpace(in.Username), strings.TrimSpace(in.Email)
		if err := flowengine.CheckUsername(in.Username); err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		if err := flowengine.CheckEmail(in.Email); err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		if in.Password == "" {
			return apiErr(http.StatusBadRequest, "password is required")
		}
		hash, err := flowengine.HashPassword(in.Password)
		if err != nil {
			return err
		}
		u := &flowengine.User{ID: flowengine.NewID(), Username: in.Username, Email: in.Email, Name: in.Name,
			IsActive: !in.Inactive, PasswordHash: hash, Groups: in.Groups, CreatedAt: time.Now().UTC()}
		if err := st.CreateUser(ctx, u); err != nil {
			if errors.Is(err, flowengine.ErrConflict) {
				return apiErr(http.StatusConflict, "%v", err)
			}
			return apiErr(http.StatusServiceUnavailable, "creating user: %v", err)
		}
		app.audit(auditUserCreated, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID))
		return app.writeUser(ctx, w, http.StatusCreated, u)
	}
	if len(rest) == 0 {
		return apiErr(http.StatusMethodNotAllowed, "method not allowed")
	}
	u, err := st.GetUserByUsername(ctx, rest[0])
	if errors.Is(err, flowengine.ErrNotFound) {
		return apiErr(http.StatusNotFound, "no user %q", rest[0])
	}
	if err != nil {
		return apiErr(http.StatusServiceUnavailable, "loading user: %v", err)
	}
	switch {
	case len(rest) == 1 && r.Method == http.MethodGet:
		return app.writeUser(ctx, w, http.StatusOK, u)
	case len(rest) == 1 && r.Method == http.MethodPatch:
		return adminPatchUser(ctx, w, r, app, u)
	case len(rest) == 1 && r.Method == http.MethodDelete:
		if err := st.DeleteUser(ctx, u.ID); err != nil {
			return apiErr(http.StatusServiceUnavailable, "deleting user: %v", err)
		}
		app.audit(auditUserDeleted, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID))
		return writeJSON(w, http.StatusOK, map[string]string{"deleted": u.Username})
	case len(rest) == 2 && rest[1] == "password" && r.Method == http.MethodPut:
		var in userRequest
		if err := decodeAdminJSON(w, r, &in); err != nil {
			return err
		}
		if in.Password == "" {
			return apiErr(http.StatusBadRequest, "password is required")
		}
		if u.PasswordHash, err = flowengine.HashPassword(in.Password); err != nil {
			return err
		}
		if err := st.UpdateUser(ctx, u); err != nil {
			return apiErr(http.StatusServiceUnavailable, "updating user: %v", err)
		}
		// A new password ends every session opened with the old one.
		if err := st.DeleteUserSessions(ctx, u.ID); err != nil {
			return apiErr(http.StatusServiceUnavailable, "revoking sessions: %v", err)
		}
		app.audit(auditPasswordChanged, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID))
		return writeJSON(w, http.StatusOK, map[string]string{"updated": u.Username})
	case len(rest) == 2 && rest[1] == "sessions" && r.Method == http.MethodGet:
		list, err := st.ListUserSessions(ctx, u.ID)
		if err != nil {
			return apiErr(http.StatusServiceUnavailable, "listing sessions: %v", err)
		}
		type view struct {
			Handle    string    `json:"handle"`
			Created   time.Time `json:"created_at"`
			LastSeen  time.Time `json:"last_seen"`
			Expires   time.Time `json:"expires_at"`
			ClientIP  string    `json:"client_ip,omitempty"`
			UserAgent string    `json:"user_agent,omitempty"`
			Methods   []string  `json:"auth_methods,omitempty"`
		}
		out := []view{}
		for _, s := range list {
			// Session IDs are bearer secrets: never shown, only their handle.
			out = append(out, view{sessionHandle(s.ID), s.CreatedAt, s.LastSeen, s.ExpiresAt, s.ClientIP, s.UserAgent, s.AuthMethods})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
		return writeJSON(w, http.StatusOK, out)
	case len(rest) == 2 && rest[1] == "unlock" && r.Method == http.MethodPost:
		if err := app.regulator.Unlock(ctx, u); err != nil {
			return apiErr(http.StatusServiceUnavailable, "unlocking: %v", err)
		}
		app.audit(auditUnlocked, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID))
		return writeJSON(w, http.StatusOK, map[string]string{"unlocked": u.Username})
	case len(rest) == 2 && rest[1] == "sessions" && r.Method == http.MethodDelete:
		if err := st.DeleteUserSessions(ctx, u.ID); err != nil {
			return apiErr(http.StatusServiceUnavailable, "revoking sessions: %v", err)
		}
		app.audit(auditSessionRevoked, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID), zap.String("sessions", "all"))
		return writeJSON(w, http.StatusOK, map[string]string{"revoked": u.Username})
	case len(rest) == 3 && rest[1] == "sessions" && r.Method == http.MethodDelete:
		return adminRevokeSession(ctx, w, app, u, rest[2])
	case len(rest) == 2 && rest[1] == "mfa" && r.Method == http.MethodGet:
		return writeJSON(w, http.StatusOK, deviceViews(u))
	case len(rest) == 2 && rest[1] == "mfa" && r.Method == http.MethodDelete:
		return adminRemoveDevices(ctx, w, app, u, "")
	case len(rest) == 3 && rest[1] == "mfa" && r.Method == http.MethodDelete:
		return adminRemoveDevices(ctx, w, app, u, rest[2])
	}
	return apiErr(http.StatusNotFound, "no such flowgate admin endpoint: %s %s", r.Method, r.URL.Path)
}

// adminPatchUser changes the fields a PATCH body names and answers the user's
// view. Deactivating ends the user's sessions: every store's UpdateUser deletes
// them in the same write when is_active goes from true to false.
func adminPatchUser(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, u *flowengine.User) error {
	var in userPatch
	if err := decodeAdminJSON(w, r, &in); err != nil {
		return err
	}
	m := *u // the store may share its copy: never change it
	changed, err := in.apply(&m)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	if len(changed) == 0 {
		return app.writeUser(ctx, w, http.StatusOK, u)
	}
	// Only over the record just read: a change landing meanwhile (another
	// operator, a password change) is never written back over.
	switch err := app.store.UpdateUserIf(ctx, &m, u); {
	case errors.Is(err, flowengine.ErrChanged):
		return apiErr(http.StatusConflict, "user %q changed meanwhile; read it again and retry", u.Username)
	case errors.Is(err, flowengine.ErrConflict):
		return apiErr(http.StatusConflict, "%v", err)
	case errors.Is(err, flowengine.ErrNotFound):
		return apiErr(http.StatusNotFound, "no user %q", u.Username)
	case err != nil:
		return apiErr(http.StatusServiceUnavailable, "updating user: %v", err)
	}
	fields := []zap.Field{viaAdmin, zap.String("user", m.Username), zap.String("user_id", m.ID), zap.Strings("fields", changed)}
	if u.IsActive && !m.IsActive {
		fields = append(fields, zap.Bool("sessions_ended", true))
	}
	app.audit(auditUserChanged, fields...)
	return app.writeUser(ctx, w, http.StatusOK, &m)
}

// adminRevokeSession ends the one session of u whose handle is given; 404 if
// u has none with that handle.
func adminRevokeSession(ctx context.Context, w http.ResponseWriter, app *App, u *flowengine.User, handle string) error {
	list, err := app.store.ListUserSessions(ctx, u.ID)
	if err != nil {
		return apiErr(http.StatusServiceUnavailable, "listing sessions: %v", err)
	}
	for _, s := range list {
		if sessionHandle(s.ID) != handle {
			continue
		}
		if err := app.store.DeleteSession(ctx, s.ID); err != nil && !errors.Is(err, flowengine.ErrNotFound) {
			return apiErr(http.StatusServiceUnavailable, "revoking session: %v", err)
		}
		app.audit(auditSessionRevoked, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID), zap.String("sessions", handle))
		return writeJSON(w, http.StatusOK, map[string]string{"revoked": u.Username, "session": handle})
	}
	return apiErr(http.StatusNotFound, "user %q has no session %q", u.Username, handle)
}

// deviceView is a second factor without its secrets (sealed TOTP secret,
// recovery code hashes, WebAuthn credential), as the admin API and the account
// page show it.
type deviceView struct {
	ID       string    `json:"id"`
	Class    string    `json:"class"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created_at"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// deviceViews lists u's devices, oldest first; never nil, so JSON shows [].
func deviceViews(u *flowengine.User) []deviceView {
	out := make([]deviceView, 0, len(u.Devices))
	for _, d := range u.Devices {
		out = append(out, deviceView{d.ID, d.Class, d.Name, d.CreatedAt, d.LastUsed})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// adminRemoveDevices removes one device of u (id), or all of them (id ""): an
// MFA reset for a user who lost their phone. 404 if u has no device id.
func adminRemoveDevices(ctx context.Context, w http.ResponseWriter, app *App, u *flowengine.User, id string) error {
	removed, err := app.removeDevices(ctx, u, id)
	switch {
	case errors.Is(err, errNoDevice):
		return apiErr(http.StatusNotFound, "user %q has no device %q", u.Username, id)
	case errors.Is(err, flowengine.ErrNotFound):
		return apiErr(http.StatusNotFound, "no user %q", u.Username)
	case err != nil:
		return apiErr(http.StatusServiceUnavailable, "removing devices: %v", err)
	}
	for _, d := range removed {
		app.audit(auditDeviceRemoved, viaAdmin, zap.String("user", u.Username), zap.String("user_id", u.ID),
			zap.String("device", d.ID), zap.String("class", d.Class))
	}
	ids := make([]string, 0, len(removed))
	for _, d := range removed {
		ids = append(ids, d.ID)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"user": u.Username, "removed": ids})
}

// errNoDevice: the user has no device with that ID.
var errNoDevice = errors.New("no such device")

// removeDevices drops the device id of u, or every device when id is "", in
// one compare-and-swap write (a concurrent sign-in spending a code is not
// written back over), and returns what it removed. errNoDevice when u has
// no device id; removing all from a user with none removes nothing.
func (a *App) removeDevices(ctx context.Context, u *flowengine.User, id string) ([]deviceView, error) {
	var removed []deviceView
	_, err := flowengine.ModifyUser(ctx, a.store, u.ID, func(m *flowengine.User) error {
		removed = removed[:0]
		for _, d := range m.Devices {
			if id == "" || d.ID == id {
				removed = append(removed, deviceView{d.ID, d.Class, d.Name, d.CreatedAt, d.LastUsed})
			}
		}
		switch {
		case id != "" && len(removed) == 0:
			return errNoDevice
		case len(removed) == 0:
			return flowengine.ErrNoChange
		case id == "":
			m.Devices = nil
		default:
			m.RemoveDevice(id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// adminPathSegments splits the request path after /flowgate/ on "/" and then
// unescapes each segment, so that an escaped "/" or "%" inside a name stays
// inside its segment.
func adminPathSegments(r *http.Request) ([]string, error) {
	raw := strings.Trim(strings.TrimPrefix(r.URL.EscapedPath(), "/flowgate/"), "/")
	segs := strings.Split(raw, "/")
	for i, seg := range segs {
		s, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("path segment %q: %v", seg, err)
		}
		segs[i] = s
	}
	return segs, nil
}

func decodeAdminJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}

var _ caddy.AdminRouter = AdminAPI{}
