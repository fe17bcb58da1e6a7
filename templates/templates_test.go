package templates_test

import (
	"bytes"
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
