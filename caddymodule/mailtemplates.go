package caddymodule

import (
	"fmt"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/templates"
)

// mailTemplates renders the email stage's mail from the templates package
// (email_subject.txt, email_text.txt, email_html.html, overridable from the
// templates folder), adding the brand.
type mailTemplates struct {
	pages *templates.Pages
	brand templates.Brand
}

var _ flowengine.MailRenderer = mailTemplates{}

func (m mailTemplates) RenderMail(kind string, d flowengine.MailData) (subject, text, html string, err error) {
	if kind != "email" {
		return "", "", "", fmt.Errorf("no mail template for %q", kind)
	}
	return m.pages.RenderMail(templates.MailData{Link: d.Link, FlowTitle: d.FlowTitle, Username: d.Username, Brand: m.brand, Expiry: d.Expiry})
}
