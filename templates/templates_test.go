package templates_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/templates"
)

func page() *templates.Page {
	return &templates.Page{
		Brand: templates.Brand{Name: "Acme"}, StaticBase: "/.flowgate/static", Title: "Sign in",
		FlowTitle: "Sign in", Step: 2, Steps: 3, Action: "/.flowgate/flows/x/", CSRFToken: "tok",
		Fields: []templates.Field{{Key: "password", Type: "password", Label: "Password", Required: true,
			Autocomplete: "current-password", Errors: []string{"Invalid password."}}},
		Messages: []string{"<script>alert(1)</script>"},
	}
}

func TestStagePageIsAccessibleAndEscaped(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.Render(&buf, p.StageTemplate("password"), page()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<label for="f-password">Password</label>`, `autocomplete="current-password"`,
		`aria-describedby="e-password"`, `<p class="field-error" id="e-password">Invalid password.</p>`,
		`Step 2 of 3`, `name="csrf_token" value="tok"`, `<meta name="viewport"`, `&lt;script&gt;`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(out, "<script>") {
		t.Error("message not escaped")
	}
	if p.StageTemplate("no_such_type") != "stage_generic" {
		t.Error("unknown stage types must fall back to the generic template")
	}
}

func TestOverrideFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "custom.html"), []byte(`{{define "stage_password"}}<p>custom password page</p>{{end}}`), 0o644)
	p, err := templates.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.Render(&buf, p.StageTemplate("password"), page()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "custom password page") || !strings.Contains(buf.String(), "<title>") {
		t.Fatalf("override not used inside the layout:\n%s", buf.String())
	}
	os.WriteFile(filepath.Join(dir, "broken.html"), []byte(`{{define "x"}}{{.Nope`), 0o644)
	if _, err := templates.New(dir); err == nil {
		t.Fatal("a broken override template was accepted")
	}
	if _, err := templates.New(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing override folder was accepted")
	}
}

// Status pages: the heading is the tab title, the 403 says who is signed in.
func TestStatusPages(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"denied", "forbidden", "notfound", "expired", "error", "unavailable", "signed_out"} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			pg := &templates.Page{Brand: templates.Brand{Name: "Acme"}, Title: "Heading " + name, Message: "why",
				User: "alice", Links: []templates.Link{{URL: "/.flowgate/default/authentication/?next=%2Fx", Label: "Sign in"}}}
			if err := p.Render(&buf, name, pg); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, want := range []string{"<title>Heading " + name + " · Acme</title>", `<h1 id="page-title">Heading ` + name + `</h1>`,
				`href="/.flowgate/default/authentication/?next=%2Fx"`} {
				if !strings.Contains(out, want) {
					t.Errorf("lacks %s:\n%s", want, out)
				}
			}
			if name == "forbidden" && !strings.Contains(out, "signed in as <strong>alice</strong>") {
				t.Errorf("403 does not say who is signed in:\n%s", out)
			}
		})
	}
}

// A refused answer's message is an error (role=alert), a plain message is not.
func TestRefusalIsAnError(t *testing.T) {
	p, _ := templates.New("")
	pg := page()
	pg.Messages, pg.Errors = []string{"We sent you an email."}, []string{"Too many failed attempts. Try again later."}
	var buf bytes.Buffer
	if err := p.Render(&buf, "stage_generic", pg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `<div class="errors" role="alert"><p>Too many failed attempts. Try again later.</p></div>`) ||
		!strings.Contains(out, `<div class="messages" role="status"><p>We sent you an email.</p></div>`) {
		t.Fatalf("messages and errors:\n%s", out)
	}
}

// The password page: "not you?" restarts the flow; the show/hide control is a
// script file, never inline script or handlers, and only when asked for.
func TestPasswordPageNotYouAndReveal(t *testing.T) {
	p, _ := templates.New("")
	pg := page()
	pg.Data = map[string]any{"user": "alice"}
	pg.Restart = "/.flowgate/flows/x/?next=%2Fapp"
	var buf bytes.Buffer
	if err := p.Render(&buf, "stage_password", pg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `Signing in as <strong>alice</strong> — <a href="/.flowgate/flows/x/?next=%2Fapp">not you?</a>`) {
		t.Errorf("no \"not you?\" link:\n%s", out)
	}
	if strings.Contains(out, "<script") || strings.Contains(out, "data-reveal") {
		t.Errorf("show/hide control without allow_show_password:\n%s", out)
	}
	pg.Fields[0].Reveal, pg.Script = true, true
	buf.Reset()
	if err := p.Render(&buf, "stage_password", pg); err != nil {
		t.Fatal(err)
	}
	out = buf.String()
	for _, want := range []string{`<script src="/.flowgate/static/flowgate.js" defer></script>`,
		`<button type="button" class="reveal" data-reveal="f-password" aria-controls="f-password" aria-pressed="false" hidden>Show password</button>`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "<script") != 1 || strings.Contains(out, " onclick") {
		t.Error("inline script or handler")
	}
	js, err := fs.ReadFile(templates.Static(), "flowgate.js")
	if err != nil || !strings.Contains(string(js), "data-reveal") {
		t.Fatalf("flowgate.js: %v", err)
	}
}

// The 503 page speaks of the service, not of signing in: a signed-in user
// sees it too when the store is down.
func TestUnavailableSaysService(t *testing.T) {
	p, _ := templates.New("")
	var buf bytes.Buffer
	if err := p.Render(&buf, "unavailable", &templates.Page{Title: "Service unavailable"}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "This service is unavailable right now.") || strings.Contains(strings.ToLower(out), "sign-in") {
		t.Fatalf("503 page:\n%s", out)
	}
}

// Each field kind of the prompt stage renders as its own control, with its help
// text under it, everything escaped.
func TestPromptFieldKinds(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	choices := []templates.Choice{{Value: "a", Label: "Apple"}, {Value: "b", Label: "<b>Banana</b>"}}
	cases := []struct {
		name  string
		field templates.Field
		want  []string
		not   []string
	}{
		{"number", templates.Field{Key: "age", Type: "number", Label: "Age", Value: "42", Required: true},
			[]string{`<input type="number" id="f-age" name="age" value="42" required>`}, nil},
		{"date", templates.Field{Key: "dob", Type: "date", Label: "Born", Value: "2000-01-31"},
			[]string{`<input type="date" id="f-dob" name="dob" value="2000-01-31">`}, nil},
		{"static", templates.Field{Key: "note", Type: "static", Label: "Note", Value: "Read <this>"},
			[]string{`<p id="f-note">Read &lt;this&gt;</p>`}, []string{`name="note"`, `<label`}},
		{"static label only", templates.Field{Key: "note", Type: "static", Label: "Just a label"},
			[]string{`<p id="f-note">Just a label</p>`}, []string{`name="note"`}},
		{"textarea", templates.Field{Key: "bio", Type: "textarea", Label: "Bio", Value: "</textarea><script>", Placeholder: "Tell us"},
			[]string{`<textarea id="f-bio" name="bio" placeholder="Tell us">&lt;/textarea&gt;&lt;script&gt;</textarea>`}, []string{"<script>"}},
		{"select", templates.Field{Key: "fruit", Type: "choice", Label: "Fruit", Value: "b", Choices: choices},
			[]string{`<select id="f-fruit" name="fruit">`, `<option value="b" selected>&lt;b&gt;Banana&lt;/b&gt;</option>`},
			[]string{`type="radio"`}},
		{"radio", templates.Field{Key: "fruit", Type: "radio", Label: "Fruit", Value: "b", Required: true, Choices: choices,
			Errors: []string{"Choose one of the options."}},
			[]string{`<fieldset class="field radio" aria-describedby="e-fruit">`, `<legend>Fruit</legend>`,
				`<input type="radio" id="f-fruit-0" name="fruit" value="a" required aria-invalid="true">`,
				`<label for="f-fruit-0">Apple</label>`,
				`<input type="radio" id="f-fruit-1" name="fruit" value="b" checked required aria-invalid="true">`,
				`<label for="f-fruit-1">&lt;b&gt;Banana&lt;/b&gt;</label>`,
				`<p class="field-error" id="e-fruit">Choose one of the options.</p>`},
			[]string{`<select`}},
		{"sub text", templates.Field{Key: "nick", Type: "text", Label: "Nickname", SubText: "Shown to <others>"},
			[]string{`aria-describedby="h-nick"`, `<p class="field-help" id="h-nick">Shown to &lt;others&gt;</p>`}, nil},
		{"sub text and errors", templates.Field{Key: "nick", Type: "text", Label: "Nickname", SubText: "Help", Errors: []string{"Bad."}},
			[]string{`aria-invalid="true" aria-describedby="h-nick e-nick"`, `<p class="field-help" id="h-nick">Help</p>`,
				`<p class="field-error" id="e-nick">Bad.</p>`}, nil},
		{"static sub text", templates.Field{Key: "note", Type: "static", Label: "Note", SubText: "More"},
			[]string{`<p class="field-help" id="h-note">More</p>`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pg := page()
			pg.Messages = nil
			pg.Fields = []templates.Field{tc.field}
			var buf bytes.Buffer
			if err := p.Render(&buf, p.StageTemplate("prompt"), pg); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("page lacks %s\n%s", want, out)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(out, not) {
					t.Errorf("page has %s", not)
				}
			}
			if strings.Contains(out, " style=") || strings.Contains(out, "<style") {
				t.Error("inline style breaks the CSP")
			}
		})
	}
}

// The proof-of-work page loads pow.js from the static folder (no inline
// script) with the puzzle in data attributes; other pages do not load it.
func TestCaptchaProofOfWorkPage(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	if p.StageTemplate("captcha") != "stage_captcha" {
		t.Fatal("no captcha page")
	}
	pg := page()
	pg.Fields = []templates.Field{{Key: "token", Type: "hidden", Required: true}}
	pg.Data = map[string]any{"pow": map[string]any{"challenge": "ABC234", "difficulty": 16, "algorithm": "sha256"}}
	var buf bytes.Buffer
	if err := p.Render(&buf, "stage_captcha", pg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`<script src="/.flowgate/static/pow.js" defer></script>`,
		`data-pow-challenge="ABC234"`, `data-pow-difficulty="16"`, `<input type="hidden" name="token" value="">`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "<script") != 1 || strings.Contains(out, "data-pow-retry") {
		t.Errorf("inline script, or a retry without an error:\n%s", out)
	}
	// After a refused answer the error shows and the script waits for a click.
	pg.Fields[0].Errors = []string{"The captcha was not solved. Try again."}
	buf.Reset()
	if err := p.Render(&buf, "stage_captcha", pg); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "data-pow-retry") || !strings.Contains(out, "The captcha was not solved") {
		t.Errorf("refusal not shown:\n%s", out)
	}
	js, err := fs.ReadFile(templates.Static(), "pow.js")
	if err != nil || !strings.Contains(string(js), "crypto.subtle.digest") {
		t.Fatalf("pow.js: %v", err)
	}
	// A siteverify page, or any other, does not load it.
	pg.Data = map[string]any{"site_key": "k", "js_url": "https://example.com/api.js"}
	buf.Reset()
	if err := p.Render(&buf, "stage_captcha", pg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "pow.js") {
		t.Error("pow.js without a puzzle")
	}
}

// A siteverify page loads the provider's script and captcha.js, and draws the
// widget's container with the site key, escaped.
func TestCaptchaSiteverifyPage(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	pg := page()
	pg.Fields = []templates.Field{{Key: "token", Type: "hidden", Required: true}}
	pg.Data = map[string]any{"site_key": `k"><script>x</script>`, "js_url": "https://challenges.cloudflare.com/turnstile/v0/api.js"}
	var buf bytes.Buffer
	if err := p.Render(&buf, "stage_captcha", pg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<div class="captcha-widget cf-turnstile h-captcha g-recaptcha" id="captcha-widget" data-sitekey="k&#34;&gt;&lt;script&gt;x&lt;/script&gt;" data-response-field-name="token"></div>`,
		`<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>`,
		`<script src="/.flowgate/static/captcha.js" defer></script>`,
		`<input type="hidden" name="token" value="">`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<script>x") || strings.Contains(out, "pow.js") {
		t.Errorf("unescaped site key, or pow.js:\n%s", out)
	}
	js, err := fs.ReadFile(templates.Static(), "captcha.js")
	if err != nil || !strings.Contains(string(js), "h-captcha-response") {
		t.Fatalf("captcha.js: %v", err)
	}
	// A proof-of-work page draws no widget.
	pg.Data = map[string]any{"pow": map[string]any{"challenge": "A", "difficulty": 1}}
	buf.Reset()
	if err := p.Render(&buf, "stage_captcha", pg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "captcha-widget") || strings.Contains(buf.String(), "captcha.js") {
		t.Error("widget on a proof-of-work page")
	}
}

// The passkey pages load webauthn.js from the static folder and hand it the
// options in a JSON data block (no inline script), escaped; with only the
// hidden credential field there is no submit button (the script submits), and
// a refused passkey's error shows.
func TestPasskeyPages(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"authenticator_webauthn", "authenticator_validate"} {
		if p.StageTemplate(typ) != "stage_"+typ {
			t.Fatalf("no %s page", typ)
		}
		pg := page()
		pg.Fields = []templates.Field{{Key: "credential", Type: "hidden", Errors: []string{"This passkey answer was made for another site."}}}
		pg.Data = map[string]any{"options": map[string]any{"publicKey": map[string]any{"challenge": "</script><b>x"}}}
		var buf bytes.Buffer
		if err := p.Render(&buf, "stage_"+typ, pg); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{`<script src="/.flowgate/static/webauthn.js" defer></script>`,
			`<script type="application/json" id="webauthn-options">{"publicKey":{"challenge":"\u003c/script\u003e\u003cb\u003ex"}}</script>`,
			`<input type="hidden" name="credential" value="">`, `data-webauthn=`, "made for another site"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %s:\n%s", typ, want, out)
			}
		}
		if strings.Contains(out, `type="submit"`) || strings.Contains(out, "<b>x") {
			t.Errorf("%s: a submit button, or the options unescaped:\n%s", typ, out)
		}
		// With a code field too, the form has its button.
		pg.Fields = append([]templates.Field{{Key: "code", Type: "text", Label: "Code"}}, pg.Fields...)
		buf.Reset()
		if err := p.Render(&buf, "stage_"+typ, pg); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), `type="submit"`) {
			t.Errorf("%s with a code field has no submit button", typ)
		}
	}
	js, err := fs.ReadFile(templates.Static(), "webauthn.js")
	if err != nil || !strings.Contains(string(js), "navigator.credentials.get") || !strings.Contains(string(js), "navigator.credentials.create") {
		t.Fatalf("webauthn.js: %v", err)
	}
}
