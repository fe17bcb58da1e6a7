package caddymodule

import (
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Checks of the app's settings that would otherwise only fail at run time, on
// every request: called by App.Validate (so `caddy validate` reports them) and,
// where the Caddyfile has a line to point at, by the Caddyfile adapter.

// checkCookieName refuses a session cookie name that browsers or Go's
// net/http would drop: a cookie name is an HTTP token (RFC 6265), so no
// spaces, ";", "=", quotes or control characters. A name that is flowgate's
// flow cookie or carries a __Host-/__Secure- prefix is refused too: flowgate
// adds __Host- itself on https sites, and a taken name would make the two
// cookies overwrite each other. "" is the default name.
func checkCookieName(name string) error {
	if name == "" {
		return nil
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("cookie name %q: not a valid cookie name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
	}
	if lower := strings.ToLower(name); strings.HasPrefix(lower, "__host-") || strings.HasPrefix(lower, "__secure-") {
		return fmt.Errorf("cookie name %q: leave out the __Host-/__Secure- prefix (flowgate adds __Host- on https sites without a cookie domain)", name)
	}
	if name == flowCookieName {
		return fmt.Errorf("cookie name %q: that is flowgate's flow cookie", name)
	}
	return nil
}

// checkTemplates renders every page template with sample data when an
// operator's templates replace built-in ones, so that an override referring to
// a missing field fails the config load with the template's name rather than
// making every page a 500.
func (a *App) checkTemplates() error {
	if a.TemplatesDir == "" || a.pages == nil {
		return nil // the built-in templates are checked by their tests
	}
	if err := a.pages.Check(); err != nil {
		return fmt.Errorf("templates %s: %w", a.TemplatesDir, err)
	}
	return nil
}
