package caddymodule

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/flowgate/flowgate/flowengine"
)

// flowCookieName holds the browser's running flow executions, slug → execution ID.
const flowCookieName = "flowgate_flow"

// maxFlowsInCookie bounds the flow cookie; the oldest entries go first.
const maxFlowsInCookie = 8

func (a *App) encode(name string, value []byte) (string, error) {
	return securecookie.EncodeMulti(name, value, a.codecs...)
}

func (a *App) decode(name, value string) ([]byte, bool) {
	var out []byte
	if err := securecookie.DecodeMulti(name, value, &out, a.codecs...); err != nil {
		return nil, false
	}
	return out, true
}

// sessionID reads the session ID from the cookie; forged, truncated or
// foreign-key cookies read as no session. Verified values are remembered, so the
// HMAC and decryption run once per cookie rather than once per request.
func (a *App) sessionID(r *http.Request) (string, bool) {
	c, err := r.Cookie(a.Cookie.Name)
	if err != nil || c.Value == "" {
		return "", false
	}
	if id, ok := a.verified.get(c.Value); ok {
		return id, true
	}
	id, ok := a.decode(a.Cookie.Name, c.Value)
	if !ok || len(id) == 0 {
		return "", false
	}
	a.verified.put(c.Value, string(id))
	return string(id), true
}

// verifiedCookies maps cookie values that passed verification to session IDs.
// Only verified values enter, so it cannot be filled with forgeries; it is
// dropped when full. A new config (new keys) starts a new one.
type verifiedCookies struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxVerifiedCookies = 100_000

func (v *verifiedCookies) get(value string) (string, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	id, ok := v.m[value]
	return id, ok
}

func (v *verifiedCookies) put(value, id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedCookies {
		v.m = map[string]string{}
	}
	v.m[value] = id
}

func (a *App) setSessionCookie(w http.ResponseWriter, r *http.Request, s *flowengine.Session) error {
	v, err := a.encode(a.Cookie.Name, []byte(s.ID))
	if err != nil {
		return err
	}
	c := &http.Cookie{
		Name: a.Cookie.Name, Value: v, Path: "/", Domain: a.Cookie.Domain,
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
		Name: a.Cookie.Name, Value: "", Path: "/", Domain: a.Cookie.Domain, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

type flowEntry struct {
	Slug string `json:"s"`
	ID   string `json:"e"`
}

// flowExecutions reads the flow cookie; anything unreadable reads as empty.
func (a *App) flowExecutions(r *http.Request) []flowEntry {
	c, err := r.Cookie(flowCookieName)
	if err != nil {
		return nil
	}
	raw, ok := a.decode(flowCookieName, c.Value)
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
	list := a.flowExecutions(r)
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
	c := &http.Cookie{Name: flowCookieName, Path: prefix + "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
	if len(out) == 0 {
		c.MaxAge = -1
	} else {
		raw, _ := json.Marshal(out)
		v, err := a.encode(flowCookieName, raw)
		if err != nil {
			return
		}
		c.Value = v
	}
	http.SetCookie(w, c)
}
