package caddymodule

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

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
	if p.WidgetOrigin != "" {
		w.Header().Set("Content-Security-Policy", widgetCSP(p.WidgetOrigin))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// statusTitles are the headings of the status pages, which are their tab
// titles too.
var statusTitles = map[string]string{
	"denied":      "Access denied",
	"forbidden":   "Access denied",
	"notfound":    "Not found",
	"expired":     "This page has expired",
	"error":       "Something went wrong",
	"unavailable": "Service unavailable",
	"signed_out":  "You have been signed out",
}

// renderStatus shows a status page. Without links it offers the way back in
// that fits the page, keeping a valid ?next= of the request.
func (h *Handler) renderStatus(w http.ResponseWriter, r *http.Request, status int, name, msg string, links ...templates.Link) error {
	p := h.basePage()
	p.Message = msg
	p.Title = statusTitles[name]
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	p.Links = links
	if len(links) == 0 {
		p.Links = h.statusLinks(r, name)
	}
	return h.render(w, status, name, p)
}

// statusLinks are a status page's default links: sign in (again), start a
// flow over, or try again; each keeps the request's valid ?next=.
func (h *Handler) statusLinks(r *http.Request, name string) []templates.Link {
	next := h.requestNext(r)
	switch name {
	case "unavailable":
		// Nothing is wrong with the visitor's sign-in: the same page, later.
		again := r.URL.Path
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			again = r.URL.RequestURI()
		}
		return []templates.Link{{URL: again, Label: "Try again"}}
	case "signed_out":
		return []templates.Link{{URL: h.signInURL(next), Label: "Sign in again"}}
	case "expired":
		if rest := strings.TrimPrefix(r.URL.Path, h.Prefix); strings.HasPrefix(rest, "/flows/") {
			return []templates.Link{{URL: restartURL(r.URL.Path, next), Label: "Start over"}}
		}
	}
	return []templates.Link{{URL: h.signInURL(next), Label: "Sign in"}}
}

// requestNext is the request's ?next= if the next validator accepts it, else "".
func (h *Handler) requestNext(r *http.Request) string {
	raw := r.URL.Query().Get("next")
	if raw == "" {
		return ""
	}
	next, ok := flowengine.TrustedNext(h.app.trusted)(raw, h.flowRequest(r, nil, nil))
	if !ok {
		return ""
	}
	return next
}

// signInURL starts signing in, then goes on to next ("" for the default target).
func (h *Handler) signInURL(next string) string {
	u := h.Prefix + "/default/authentication/"
	if next != "" {
		u += "?next=" + url.QueryEscape(next)
	}
	return u
}

// restartURL starts the flow at flowURL over: a GET with ?next= (even an empty
// one) always plans a fresh execution.
func restartURL(flowURL, next string) string {
	return flowURL + "?next=" + url.QueryEscape(next)
}

// signedOut is the page an invalidation flow ends on when it has nowhere else
// to go: it says so rather than showing a bare sign-in page.
func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return h.methodNotAllowed(w, r)
	}
	return h.renderStatus(w, r, http.StatusOK, "signed_out", "")
}

// forbiddenPage is the 403 of a protected site: who is signed in, why they may
// not, and how to sign out or sign in as someone else (and come back here).
func (h *Handler) forbiddenPage(w http.ResponseWriter, r *http.Request, msg string) error {
	p := h.basePage()
	p.Title, p.Message = statusTitles["forbidden"], msg
	if _, user, err := h.session(r.Context(), r); err == nil && user != nil {
		p.User = user.Username
	}
	p.Links = []templates.Link{
		{URL: h.Prefix + "/logout?next=" + url.QueryEscape(r.URL.RequestURI()), Label: "Sign in as someone else"},
		{URL: h.Prefix + "/logout", Label: "Sign out"},
	}
	return h.render(w, http.StatusForbidden, "forbidden", p)
}

// deniedPage is the 403 that ends a flow: the message, and a way to start over
// (another account, for a sign-in) keeping the flow's next.
func (h *Handler) deniedPage(w http.ResponseWriter, slug string, res *flowengine.Result) error {
	p := h.basePage()
	p.Title, p.Message = statusTitles["denied"], res.Response.Message
	again := templates.Link{URL: restartURL(h.flowURL(slug), res.Next), Label: "Start over"}
	f, err := h.app.engine.Flow(slug)
	if err == nil && f.Designation == flowengine.DesignationAuthentication {
		again.Label = "Use another account"
		p.Links = []templates.Link{again}
	} else {
		p.Links = []templates.Link{again, {URL: h.signInURL(res.Next), Label: "Sign in"}}
	}
	return h.render(w, http.StatusForbidden, "denied", p)
}

// inputTypes maps challenge field types to what the HTML form uses.
var inputTypes = map[string]string{
	flowengine.FieldText: "text", flowengine.FieldUsername: "text", flowengine.FieldEmail: "email",
	flowengine.FieldPassword: "password", flowengine.FieldNewPassword: "password", flowengine.FieldCode: "text",
	flowengine.FieldCheckbox: "checkbox", flowengine.FieldChoice: "choice", flowengine.FieldHidden: "hidden",
	flowengine.FieldTextArea: "textarea", flowengine.FieldNumber: "number", flowengine.FieldDate: "date",
	flowengine.FieldStatic: "static",
}

// stagePage turns a challenge into the page its stage template shows.
func (h *Handler) stagePage(res *flowengine.Result) *templates.Page {
	resp, csrf := &res.Response, res.CSRFToken
	p := h.basePage()
	p.Title = resp.Flow.Title
	p.FlowTitle, p.FlowSlug = resp.Flow.Title, resp.Flow.Slug
	p.StageName, p.StageType = resp.Stage.Name, resp.Stage.Type
	p.Step, p.Steps = resp.Stage.Step, resp.Stage.Steps
	p.Action = h.flowURL(resp.Flow.Slug)
	p.CSRFToken = csrf
	// Why the last answer was refused (a lock, a cancelled attempt) is an error;
	// the stage's own messages are not.
	refusals := min(max(resp.Refusals, 0), len(resp.Messages))
	p.Errors = append(p.Errors, resp.Messages[:refusals]...)
	p.Messages = resp.Messages[refusals:]
	p.Data = resp.Data
	if resp.Stage.Type == "captcha" {
		// A siteverify captcha's widget script: its origin, and only on this
		// page, joins the CSP.
		if js, _ := resp.Data["js_url"].(string); js != "" {
			p.WidgetOrigin = widgetOrigin(js)
		}
	}
	// "Not you?": the same flow from the start, keeping next.
	p.Restart = restartURL(p.Action, res.Next)
	reveal, _ := resp.Data["allow_show_password"].(bool)
	known := map[string]bool{}
	for _, f := range resp.Fields {
		known[f.Key] = true
		t := inputTypes[f.Type]
		if t == "" {
			t = "text"
		}
		if t == "choice" && f.Presentation == flowengine.PresentationRadio {
			t = "radio"
		}
		fv := templates.Field{
			Key: f.Key, Type: t, Label: f.Label, Required: f.Required, Autocomplete: f.Autocomplete,
			Placeholder: f.Placeholder, Value: f.Value, Checked: f.Type == flowengine.FieldCheckbox && f.Value == "true",
			Errors: resp.Errors[f.Key], SubText: f.SubText,
		}
		if t == "password" {
			fv.Value = "" // never echo a password back into the page
			if reveal && f.Type == flowengine.FieldPassword {
				fv.Reveal, p.Script = true, true
			}
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
