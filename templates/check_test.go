package templates_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/templates"
)

// The built-in templates render with the sample data; an override that refers
// to something the pages do not have fails Check naming its template, though
// it parses.
func TestCheck(t *testing.T) {
	builtIn, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := builtIn.Check(); err != nil {
		t.Fatalf("built-in templates: %v", err)
	}
	for _, tc := range []struct {
		name, file, body, wantErr string
	}{
		{"fine override", "stage_password.html", `{{define "stage_password"}}{{template "heading" .}}<p>{{.Data.user}}</p>{{template "form" .}}{{end}}`, ""},
		{"missing field", "stage_password.html", `{{define "stage_password"}}{{.Nope}}{{end}}`,
			`template stage_password does not render: rendering stage_password: template: stage_password.html:1:29: executing "stage_password" at <.Nope>: can't evaluate field Nope`},
		{"missing field in a new stage page", "stage_consent.html", `{{define "stage_consent"}}{{.Consent.Scopes}}{{end}}`, "template stage_consent does not render"},
		{"missing field in a status page", "status.html", `{{define "denied"}}{{.Reason}}{{end}}`, "template denied does not render"},
		{"missing field in a field of the form", "fields.html", `{{define "fields"}}{{range .Fields}}{{.Hint}}{{end}}{{end}}`, "can't evaluate field Hint"},
		{"missing template", "stage_generic.html", `{{define "stage_generic"}}{{template "header" .}}{{end}}`, `no such template "header"`},
		{"missing field in the layout", "layout.html", `{{define "layout"}}{{.Brand.Colour}}{{end}}`, "rendering layout"},
		{"wrong function use", "status.html", `{{define "expired"}}{{join .Message ","}}{{end}}`, "template expired does not render"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := templates.New(dir)
			if err != nil {
				t.Fatalf("the override does not even parse: %v", err)
			}
			err = p.Check()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
