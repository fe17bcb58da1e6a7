package caddymodule

import (
	"bytes"
	"net/http"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/templates"
)

func (h *Handler) basePage() *templates.Page {
	b := h.app.Branding
	p := &templates.Page{
		Brand:      templates.Brand{Name: b.Name, LogoURL: b.LogoURL},
		StaticBase: h.Prefix + "/static",
	}
	if h.app.customCSS != nil {
		p.Brand.ExtraCSS = h.Prefix + "/static/custom.css"
	}
	return p
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, p *templates.Page) error {
	var buf bytes.Buffer
	if err := h.app.pages.Render(&buf, name, p); err != nil {
		h.logger.Error("rendering page", zap.String("template", name), zap.Error(err))
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return nil
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func (h *Handler) renderStatus(w http.ResponseWriter, r *http.Request, status int, name, msg string, links ...templates.Link) error {
	p := h.basePage()
	p.Message = msg
	p.Title = http.StatusText(status)
	p.Links = links
	if len(links) == 0 && status != http.StatusServiceUnavailable {
		p.Links = []templates.Link{{URL: h.Prefix + "/default/authentication/", Label: "Sign in"}}
	}
	return h.render(w, status, name, p)
}

// inputTypes maps challenge field types to what the HTML form uses.
var inputTypes = map[string]string{
	flowengine.FieldText: "text", flowengine.FieldUsername: "text", flowengine.FieldEmail: "email",
	flowengine.FieldPassword: "password", flowengine.FieldNewPassword: "password", flowengine.FieldCode: "text",
	flowengine.FieldCheckbox: "checkbox", flowengine.FieldChoice: "choice", flowengine.FieldHidden: "hidden",
	flowengine.FieldTextArea: "textarea",
}

// stagePage turns a challenge into the page its stage template shows.
func (h *Handler) stagePage(resp *flowengine.Response, csrf string) *templates.Page {
	p := h.basePage()
	p.Title = resp.Flow.Title
	p.FlowTitle, p.FlowSlug = resp.Flow.Title, resp.Flow.Slug
	p.StageName, p.StageType = resp.Stage.Name, resp.Stage.Type
	p.Step, p.Steps = resp.Stage.Step, resp.Stage.Steps
	p.Action = h.flowURL(resp.Flow.Slug)
	p.CSRFToken = csrf
	p.Messages = resp.Messages
	p.Data = resp.Data
	known := map[string]bool{}
	for _, f := range resp.Fields {
		known[f.Key] = true
		t := inputTypes[f.Type]
		if t == "" {
			t = "text"
		}
		fv := templates.Field{
			Key: f.Key, Type: t, Label: f.Label, Required: f.Required, Autocomplete: f.Autocomplete,
			Placeholder: f.Placeholder, Value: f.Value, Checked: f.Type == flowengine.FieldCheckbox && f.Value == "true",
			Errors: resp.Errors[f.Key],
		}
		if t == "password" {
			fv.Value = "" // never echo a password back into the page
		}
		for _, c := range f.Choices {
			fv.Choices = append(fv.Choices, templates.Choice{Value: c.Value, Label: c.Label})
		}
		p.Fields = append(p.Fields, fv)
	}
	for k, errs := range resp.Errors {
		if !known[k] {
			p.Errors = append(p.Errors, errs...)
		}
	}
	for _, l := range []struct{ key, label string }{{"enrollment_flow", "Create an account"}, {"recovery_flow", "Forgot password?"}} {
		if slug, _ := resp.Data[l.key].(string); slug != "" {
			p.Links = append(p.Links, templates.Link{URL: h.flowURL(slug), Label: l.label})
		}
	}
	return p
}
