package caddymodule

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

// flowCookieName holds the browser's running flow executions, slug → execution
// handle (ID and binding secret).
const flowCookieName = "flowgate_flow"

// maxFlowsInCookie bounds the flow cookie; the oldest entries go first.
const maxFlowsInCookie = 8

// hostPrefix is "__Host-" on https sites without a cookie domain: the browser
// then accepts the cookie only from this exact host over https with Path=/, so
// a sibling subdomain or a plain-http response cannot plant or overwrite it.
func (a *App) hostPrefix(r *http.Request) string {
	if r.TLS != nil && a.Cookie.Domain == "" {
		return "__Host-"
	}
	return ""
}

// sessionCookieName is the session cookie's name on this request.
func (a *App) sessionCookieName(r *http.Request) string { return a.hostPrefix(r) + a.Cookie.Name }

// flowCookie is the flow cookie's name and path on this request (__Host-
// cookies must have Path=/).
func (a *App) flowCookie(r *http.Request, prefix string) (string, string) {
	if p := a.hostPrefix(r); p != "" {
		return p + flowCookieName, "/"
	}
	return flowCookieName, prefix + "/"
}

// sessionID reads the session ID from the cookie; forged, truncated or
// foreign-key cookies read as no session.
func (a *App) sessionID(r *http.Request) (string, bool) {
	c, err := r.Cookie(a.sessionCookieName(r))
	if err != nil || c.Value == "" {
		return "", false
	}
	return a.cookies.DecodeCached(a.Cookie.Name, c.Value)
}

func (a *App) setSessionCookie(w http.ResponseWriter, r *http.Request, s *flowengine.Session) error {
	v, err := a.cookies.Encode(a.Cookie.Name, []byte(s.ID))
	if err != nil {
		return err
	}
	c := &http.Cookie{
		Name: a.sessionCookieName(r), Value: v, Path: "/", Domain: a.Cookie.Domain,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	}
	if s.Persistent {
		life := time.Until(s.ExpiresAt)
		if l := time.Duration(a.Cookie.Lifetime); l > 0 && l < life {
			life = l
		}
		c.MaxAge = int(life.Seconds())
	}
	http.SetCookie(w, c)
	return nil
}

func (a *App) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: a.sessionCookieName(r), Value: "", Path: "/", Domain: a.Cookie.Domain, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

type flowEntry struct {
	Slug string `json:"s"`
	ID   string `json:"e"`
}

// flowExecutions reads the flow cookie; anything unreadable reads as empty.
func (a *App) flowExecutions(r *http.Request, prefix string) []flowEntry {
	name, _ := a.flowCookie(r, prefix)
	c, err := r.Cookie(name)
	if err != nil {
		return nil
	}
	raw, ok := a.cookies.Decode(flowCookieName, c.Value)
	if !ok {
		return nil
	}
	var list []flowEntry
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	return list
}

func executionFor(list []flowEntry, slug string) string {
	for _, e := range list {
		if e.Slug == slug {
			return e.ID
		}
	}
	return ""
}

// setFlowExecution records (or, with an empty id, forgets) the slug's execution.
func (a *App) setFlowExecution(w http.ResponseWriter, r *http.Request, prefix, slug, id string) {
	list := a.flowExecutions(r, prefix)
	out := make([]flowEntry, 0, len(list)+1)
	for _, e := range list {
		if e.Slug != slug {
			out = append(out, e)
		}
	}
	if id != "" {
		out = append(out, flowEntry{Slug: slug, ID: id})
	}
	if len(out) > maxFlowsInCookie {
		out = out[len(out)-maxFlowsInCookie:]
	}
	name, path := a.flowCookie(r, prefix)
	c := &http.Cookie{Name: name, Path: path, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
	if len(out) == 0 {
		c.MaxAge = -1
	} else {
		raw, _ := json.Marshal(out)
		v, err := a.cookies.Encode(flowCookieName, raw)
		if err != nil {
			return
		}
		c.Value = v
	}
	http.SetCookie(w, c)
}
