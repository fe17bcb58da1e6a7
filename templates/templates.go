// Package templates renders flowgate's HTML pages from embedded html/template files,
// optionally overridden from an operator's folder.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed html/*.html
var htmlFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Static returns the embedded static assets (the stylesheet and the
// show-password script), rooted at "static".
func Static() fs.FS {
	sub, _ := fs.Sub(staticFiles, "static")
	return sub
}

// Pages is the compiled template set.
type Pages struct {
	t    *template.Template
	mail *mailTemplates
}

// Brand is what an operator can change about the look.
type Brand struct {
	Name     string
	LogoURL  string
	ExtraCSS string // URL of extra CSS, served by the gateway
}

// Field is a challenge field as a page shows it.
type Field struct {
	Key string
	// Type is the input type attribute (text, email, password, number, date,
	// checkbox, hidden), or one of: choice (a select), radio (a radio group
	// over Choices), textarea, static (Value, else Label, as text; no input).
	Type         string
	Label        string
	Required     bool
	Autocomplete string
	Placeholder  string
	Value        string
	Checked      bool
	Choices      []Choice
	Errors       []string
	// SubText is help shown under the field.
	SubText string
	// Reveal adds a show/hide control to a password field (it needs Page.Script).
	Reveal bool
}

// Choice is one option of a choice field.
type Choice struct{ Value, Label string }

// Page is everything a template may show.
type Page struct {
	Brand      Brand
	StaticBase string // URL prefix of static assets
	Title      string
	FlowTitle  string
	FlowSlug   string
	StageName  string
	StageType  string
	Step       int
	Steps      int
	Action     string // form action URL
	CSRFToken  string
	Fields     []Field
	Messages   []string
	Errors     []string // errors not tied to a field, and why an answer was refused
	Data       map[string]any
	Message    string // denied / status pages
	Links      []Link
	// User is who is signed in, on pages that say so (403).
	User string
	// Restart is a link that starts the flow over, keeping next ("not you?").
	Restart string
	// Script loads flowgate.js (the show-password control).
	Script bool
	// WidgetOrigin is the origin (scheme://host[:port]) of a third-party
	// widget the page loads (a siteverify captcha): the page's CSP, and no
	// other page's, allows it for scripts, frames and connections.
	WidgetOrigin string
}

// Link is a secondary action (sign up, forgot password, start over).
type Link struct{ URL, Label string }

// New compiles the embedded templates and then any *.html in overrideDir, whose
// templates replace the embedded ones of the same name. The mail templates
// (MailSubject, MailText, MailHTML) are files of their own: one in overrideDir
// replaces the embedded one of that file name.
func New(overrideDir string) (*Pages, error) {
	funcs := map[string]any{
		"join":  strings.Join,
		"lower": strings.ToLower,
	}
	t := template.New("flowgate").Funcs(funcs)
	t, err := t.ParseFS(htmlFiles, "html/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing built-in templates: %w", err)
	}
	if overrideDir != "" {
		files, err := filepath.Glob(filepath.Join(overrideDir, "*.html"))
		if err != nil {
			return nil, fmt.Errorf("reading templates from %s: %w", overrideDir, err)
		}
		if _, err := os.Stat(overrideDir); err != nil {
			return nil, fmt.Errorf("reading templates from %s: %w", overrideDir, err)
		}
		files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == MailHTML })
		if len(files) > 0 {
			if t, err = t.ParseFiles(files...); err != nil {
				return nil, fmt.Errorf("parsing templates from %s: %w", overrideDir, err)
			}
		}
	}
	for _, required := range []string{"layout", "stage_generic", "denied", "notfound", "expired", "error", "unavailable", "forbidden", "signed_out", "account"} {
		if t.Lookup(required) == nil {
			return nil, fmt.Errorf("template %q is missing", required)
		}
	}
	mail, err := newMail(overrideDir, funcs)
	if err != nil {
		return nil, err
	}
	return &Pages{t: t, mail: mail}, nil
}

// StageTemplate names the template for a stage type, falling back to the generic one.
func (p *Pages) StageTemplate(stageType string) string {
	if name := "stage_" + stageType; p.t.Lookup(name) != nil {
		return name
	}
	return "stage_generic"
}

// Render writes the named page inside the layout. The page is rendered to a buffer
// first, so a template error never sends half a page.
func (p *Pages) Render(w io.Writer, name string, page *Page) error {
	var body bytes.Buffer
	if err := p.t.ExecuteTemplate(&body, name, page); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := p.t.ExecuteTemplate(&out, "layout", struct {
		*Page
		Body template.HTML
	}{page, template.HTML(body.String())}); err != nil {
		return fmt.Errorf("rendering layout: %w", err)
	}
	_, err := w.Write(out.Bytes())
	return err
}
