package templates

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// statusPages are the templates of the pages that are not a stage's.
var statusPages = []string{"denied", "forbidden", "notfound", "expired", "error", "unavailable", "signed_out", "account"}

// Check renders every page (each stage_* template and each status page, inside
// the layout) and the mail templates with sample data that fills every field,
// so that a template override that refers to a field or template that does not
// exist, or calls a function wrongly, fails the config load instead of every
// page or mail at run time. The error names the template.
func (p *Pages) Check() error {
	var pages []string
	for _, t := range p.t.Templates() {
		if strings.HasPrefix(t.Name(), "stage_") && !strings.HasSuffix(t.Name(), ".html") {
			pages = append(pages, t.Name())
		}
	}
	sort.Strings(pages)
	pages = append(pages, statusPages...)
	for _, name := range pages {
		if p.t.Lookup(name) == nil {
			continue // New insists on the status pages; a missing one is its error
		}
		if err := p.Render(io.Discard, name, samplePage()); err != nil {
			return fmt.Errorf("template %s does not render: %w", name, err)
		}
	}
	if _, _, _, err := p.RenderMail(sampleMail()); err != nil {
		return fmt.Errorf("mail template does not render: %w", err)
	}
	return nil
}

// sampleMail is mail data with every field set.
func sampleMail() MailData {
	return MailData{Link: "https://example.com/.flowgate/flows/default-recovery/?flow_token=abc", FlowTitle: "Recover your account",
		Username: "alice", Brand: Brand{Name: "Example", LogoURL: "https://example.com/logo.svg"}, Expiry: "30m"}
}

// samplePage is a page with every field set, as the pages are rendered with:
// one field of each input type (with errors on one), messages, errors, links,
// stage data and a signed-in user.
func samplePage() *Page {
	return &Page{
		Brand:      Brand{Name: "Example", LogoURL: "https://example.com/logo.svg", ExtraCSS: "/.flowgate/static/custom.css"},
		StaticBase: "/.flowgate/static",
		Title:      "Sign in",
		FlowTitle:  "Sign in",
		FlowSlug:   "default-authentication",
		StageName:  "default-authentication-password",
		StageType:  "password",
		Step:       2,
		Steps:      3,
		Action:     "/.flowgate/flows/default-authentication/",
		CSRFToken:  "csrf",
		Fields: []Field{
			{Key: "uid_field", Type: "text", Label: "Username or email", Required: true, Autocomplete: "username",
				Placeholder: "alice", Value: "alice", Errors: []string{"Unknown user."}},
			{Key: "password", Type: "password", Label: "Password", Required: true, Autocomplete: "current-password", Reveal: true},
			{Key: "email", Type: "email", Label: "Email"},
			{Key: "remember_me", Type: "checkbox", Label: "Stay signed in", Value: "true", Checked: true},
			{Key: "choice", Type: "choice", Label: "Choice", Value: "a", Choices: []Choice{{"a", "A"}, {"b", "B"}}},
			{Key: "radio", Type: "radio", Label: "Radio", Value: "b", Required: true, Choices: []Choice{{"a", "A"}, {"b", "B"}},
				SubText: "Pick one.", Errors: []string{"Choose one of the options."}},
			{Key: "about", Type: "textarea", Label: "About", Value: "text", Placeholder: "About you", SubText: "A few words."},
			{Key: "age", Type: "number", Label: "Age", Value: "42", SubText: "In years."},
			{Key: "birthday", Type: "date", Label: "Birthday", Value: "2000-01-31"},
			{Key: "notice", Type: "static", Label: "Notice", Value: "Your answers are kept private.", SubText: "See the policy."},
			{Key: "hidden", Type: "hidden", Value: "x"},
		},
		Messages: []string{"A message."},
		Errors:   []string{"An error."},
		Data: map[string]any{
			"user": "alice", "allow_show_password": true,
			"enrollment_flow": "default-enrollment", "recovery_flow": "default-recovery",
			"site_key": "site-key", "js_url": "https://challenges.cloudflare.com/turnstile/v0/api.js",
			// authenticator_totp and authenticator_static setup
			"secret":      "JBSWY3DPEHPK3PXP",
			"otpauth_url": "otpauth://totp/example.com:alice?secret=JBSWY3DPEHPK3PXP&issuer=example.com&digits=6&period=30",
			"qr_png":      "data:image/png;base64,iVBORw0KGgo=",
			"codes":       []string{"abcdefghjkmn", "pqrstuvwxyz2"},
			// authenticator_webauthn and authenticator_validate
			"options":        map[string]any{"publicKey": map[string]any{"challenge": "c2FtcGxl", "rpId": "example.com"}},
			"device_classes": []string{"totp", "webauthn"},
		},
		Message: "Access denied.",
		Links:   []Link{{URL: "/.flowgate/default/authentication/", Label: "Sign in"}},
		User:    "alice",
		Restart: "/.flowgate/flows/default-authentication/?next=%2F",
		Script:  true,
		// WidgetOrigin goes into the CSP header, not the page.
		WidgetOrigin: "https://challenges.cloudflare.com",
	}
}
