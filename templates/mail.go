package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
)

//go:embed mail/*
var mailFiles embed.FS

// Mail template names: each is one file, embedded under mail/ and replaced
// as a whole by a file of the same name in the override folder. The subject
// and text part use text/template, the HTML part html/template.
const (
	MailSubject = "email_subject.txt"
	MailText    = "email_text.txt"
	MailHTML    = "email_html.html"
)

// MailData is what the email stage's templates get.
type MailData struct {
	Link      string // the link that continues the flow
	FlowTitle string
	Username  string // the pending user's, "" when not known
	Brand     Brand
	Expiry    string // how long the link works, as text ("30m")
}

type mailTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

// mailSource is the override file's content if it exists, else the embedded one.
func mailSource(overrideDir, name string) (string, error) {
	if overrideDir != "" {
		b, err := os.ReadFile(filepath.Join(overrideDir, name))
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reading template %s: %w", name, err)
		}
	}
	b, err := mailFiles.ReadFile("mail/" + name)
	return string(b), err
}

func newMail(overrideDir string, funcs map[string]any) (*mailTemplates, error) {
	var m mailTemplates
	for _, name := range []string{MailSubject, MailText, MailHTML} {
		src, err := mailSource(overrideDir, name)
		if err != nil {
			return nil, err
		}
		switch name {
		case MailSubject:
			m.subject, err = texttemplate.New(name).Funcs(funcs).Parse(src)
		case MailText:
			m.text, err = texttemplate.New(name).Funcs(funcs).Parse(src)
		default:
			m.html, err = htmltemplate.New(name).Funcs(funcs).Parse(src)
		}
		if err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
	}
	return &m, nil
}

// RenderMail renders the email stage's subject (on one line, trimmed), text
// and HTML parts.
func (p *Pages) RenderMail(data MailData) (subject, text, html string, err error) {
	var s, t, h bytes.Buffer
	if err := p.mail.subject.Execute(&s, data); err != nil {
		return "", "", "", fmt.Errorf("rendering %s: %w", MailSubject, err)
	}
	if err := p.mail.text.Execute(&t, data); err != nil {
		return "", "", "", fmt.Errorf("rendering %s: %w", MailText, err)
	}
	if err := p.mail.html.Execute(&h, data); err != nil {
		return "", "", "", fmt.Errorf("rendering %s: %w", MailHTML, err)
	}
	return strings.Join(strings.Fields(s.String()), " "), t.String(), h.String(), nil
}
