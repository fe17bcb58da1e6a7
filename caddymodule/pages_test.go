package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/templates"
)

// The prompt stage's field types reach the page as the controls that show
// them: a radio_button_group as a radio group, its help text kept.
func TestStagePageFieldTypes(t *testing.T) {
	h := &Handler{app: &App{Branding: &Branding{}}, Prefix: "/.flowgate"}
	choices := []flowengine.Choice{{Value: "a", Label: "A"}}
	res := &flowengine.Result{Response: flowengine.Response{
		Flow: flowengine.FlowInfo{Slug: "enroll"},
		Fields: []flowengine.Field{
			{Key: "n", Type: flowengine.FieldNumber},
			{Key: "d", Type: flowengine.FieldDate},
			{Key: "s", Type: flowengine.FieldStatic, Value: "Read this"},
			{Key: "t", Type: flowengine.FieldTextArea, SubText: "help"},
			{Key: "c", Type: flowengine.FieldChoice, Choices: choices},
			{Key: "r", Type: flowengine.FieldChoice, Choices: choices, Presentation: flowengine.PresentationRadio},
		},
	}}
	want := map[string]string{"n": "number", "d": "date", "s": "static", "t": "textarea", "c": "choice", "r": "radio"}
	p := h.stagePage(res)
	if len(p.Fields) != len(want) {
		t.Fatalf("got %d fields", len(p.Fields))
	}
	for _, f := range p.Fields {
		if f.Type != want[f.Key] {
			t.Errorf("field %s: type %q, want %q", f.Key, f.Type, want[f.Key])
		}
	}
	if p.Fields[3].SubText != "help" || p.Fields[2].Value != "Read this" || len(p.Fields[5].Choices) != 1 {
		t.Errorf("fields lost their sub text, value or choices: %+v", p.Fields)
	}
}

// A siteverify captcha page's CSP allows its widget's origin for scripts,
// frames and connections; other pages' CSP allows no third party.
func TestCaptchaWidgetCSP(t *testing.T) {
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{app: &App{Branding: &Branding{}, pages: pages}, Prefix: "/.flowgate", logger: zap.NewNop()}
	stage := func(typ string, data map[string]any) *flowengine.Result {
		return &flowengine.Result{Response: flowengine.Response{
			Flow:   flowengine.FlowInfo{Slug: "login", Title: "Sign in"},
			Stage:  flowengine.StageInfo{Type: typ},
			Fields: []flowengine.Field{{Key: "token", Type: flowengine.FieldHidden}},
			Data:   data,
		}}
	}
	csp := func(typ string, data map[string]any) string {
		w := httptest.NewRecorder()
		if err := h.render(w, http.StatusOK, pages.StageTemplate(typ), h.stagePage(stage(typ, data))); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return w.Header().Get("Content-Security-Policy")
	}
	got := csp("captcha", map[string]any{"site_key": "k", "js_url": "https://challenges.cloudflare.com/turnstile/v0/api.js"})
	for _, want := range []string{"script-src 'self' https://challenges.cloudflare.com;", "frame-src https://challenges.cloudflare.com;",
		"connect-src https://challenges.cloudflare.com;", "default-src 'none';", "frame-ancestors 'none'"} {
		if !strings.Contains(got, want) {
			t.Errorf("captcha CSP lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "*") || strings.Contains(got, "/turnstile") {
		t.Errorf("captcha CSP wider than the origin: %s", got)
	}
	for name, c := range map[string]string{
		"proof of work": csp("captcha", map[string]any{"pow": map[string]any{"challenge": "A", "difficulty": 1}}),
		"other stage":   csp("password", map[string]any{"js_url": "https://challenges.cloudflare.com/turnstile/v0/api.js"}),
		"bad js_url":    csp("captcha", map[string]any{"js_url": "https://a;script-src *@b/x.js"}),
	} {
		if c != contentSecurityPolicy {
			t.Errorf("%s: CSP %q", name, c)
		}
	}
	if o := widgetOrigin("https://JS.hcaptcha.com:8443/1/api.js?x=1"); o != "https://js.hcaptcha.com:8443" {
		t.Errorf("origin %q", o)
	}
	for _, bad := range []string{"javascript:alert(1)", "//x.example/a.js", "https://a b/x.js", "https://u@x.example/a.js", "https://*.example/a.js"} {
		if o := widgetOrigin(bad); o != "" {
			t.Errorf("%q: origin %q", bad, o)
		}
	}
}
