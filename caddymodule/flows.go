package caddymodule

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
)

// step runs the GET half shared by the HTML and JSON endpoints: continue the
// execution a mailed ?flow_token= link names, else resume the browser's
// execution of this flow, or plan a new one (always when ?next= is given, so a
// new target is never lost to an old execution).
func (h *Handler) step(r *http.Request, slug string, fr *flowengine.Request) (*flowengine.Result, error) {
	ctx := r.Context()
	if _, err := h.app.engine.Flow(slug); err != nil {
		return nil, err
	}
	if token := r.URL.Query().Get("flow_token"); token != "" {
		// A mailed link resumes its execution without the flow cookie (another
		// browser); a spent, expired or altered token is ErrExpired (410).
		return h.app.engine.ResumeToken(ctx, token, fr)
	}
	if id := executionFor(h.app.flowExecutions(r, h.Prefix), slug); id != "" && !r.URL.Query().Has("next") {
		res, err := h.app.engine.Resume(ctx, id, fr)
		if !errors.Is(err, flowengine.ErrExpired) {
			return res, err
		}
	}
	return h.app.engine.Start(ctx, slug, fr)
}

// flowEndpoint does what both flow executors need first: the method check and
// the caller's session (a store failure is a 503, never a way past).
func (h *Handler) flowEndpoint(w http.ResponseWriter, r *http.Request, slug string,
	serve func(http.ResponseWriter, *http.Request, string, *flowengine.Request) error) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return h.methodNotAllowed(w, r)
	}
	lookup := h.session
	if f, err := h.app.engine.Flow(slug); err == nil && f.Designation == flowengine.DesignationInvalidation {
		lookup = h.anySession
	}
	sess, user, err := lookup(r.Context(), r)
	if err != nil {
		h.logger.Error("session lookup failed", zap.Error(err))
		return h.unavailable(w, r)
	}
	return serve(w, r, slug, h.flowRequest(r, sess, user))
}

// serveFlowHTML is the HTML flow executor: GET shows the current stage, POST
// submits its form and redirects (303) to the next page.
func (h *Handler) serveFlowHTML(w http.ResponseWriter, r *http.Request, slug string, fr *flowengine.Request) error {
	if r.Method != http.MethodPost {
		res, err := h.step(r, slug, fr)
		if err != nil {
			return h.flowError(w, r, err, true)
		}
		// After a mailed link, redirect to the flow's own URL so that a reload
		// does not spend the (now used) token again.
		return h.respondHTML(w, r, slug, res, r.URL.Query().Has("flow_token"))
	}

	if !sameOrigin(r) {
		return h.renderStatus(w, r, http.StatusForbidden, "error", "This form was sent from another site and was refused.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFlowBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return h.renderStatus(w, r, http.StatusRequestEntityTooLarge, "error", "The form is too large.")
		}
		return h.renderStatus(w, r, http.StatusBadRequest, "error", "The form could not be read.")
	}
	id := executionFor(h.app.flowExecutions(r, h.Prefix), slug)
	if id == "" {
		return h.flowError(w, r, flowengine.ErrExpired, true)
	}
	want, err := h.app.engine.CSRFToken(r.Context(), id)
	if err != nil {
		return h.flowError(w, r, err, true)
	}
	got := r.PostForm.Get("csrf_token")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return h.renderStatus(w, r, http.StatusForbidden, "error", "This form has expired. Go back, reload the page and try again.")
	}
	answer := make(map[string]any, len(r.PostForm))
	for k, v := range r.PostForm {
		if k != "csrf_token" && len(v) > 0 {
			answer[k] = v[0]
		}
	}
	res, err := h.app.engine.Answer(r.Context(), id, fr, answer)
	if err != nil {
		return h.flowError(w, r, err, true)
	}
	return h.respondHTML(w, r, slug, res, true)
}

func (h *Handler) respondHTML(w http.ResponseWriter, r *http.Request, slug string, res *flowengine.Result, afterPost bool) error {
	if err := h.applyResult(w, r, slug, res); err != nil {
		return h.flowError(w, r, err, true)
	}
	resp := &res.Response
	switch resp.Type {
	case flowengine.TypeChallenge:
		if afterPost {
			http.Redirect(w, r, h.flowURL(slug), http.StatusSeeOther)
			return nil
		}
		return h.render(w, http.StatusOK, h.app.pages.StageTemplate(resp.Stage.Type), h.stagePage(res))
	case flowengine.TypeRedirect:
		status := http.StatusFound
		if afterPost {
			status = http.StatusSeeOther
		}
		to := resp.To
		if res.DefaultTarget {
			if f, err := h.app.engine.Flow(slug); err == nil && f.Designation == flowengine.DesignationInvalidation {
				// Nowhere to go back to: say that the visitor is signed out
				// rather than show the site's sign-in page.
				to = h.Prefix + "/signed-out/"
			}
		}
		http.Redirect(w, r, to, status)
		return nil
	}
	return h.deniedPage(w, slug, res)
}

// serveFlowAPI is the JSON flow executor of the HTTP contract.
func (h *Handler) serveFlowAPI(w http.ResponseWriter, r *http.Request, slug string, fr *flowengine.Request) error {
	var res *flowengine.Result
	var err error
	if r.Method != http.MethodPost {
		if res, err = h.step(r, slug, fr); err != nil {
			return h.flowError(w, r, err, false)
		}
	} else {
		if !sameOrigin(r) {
			return writeJSON(w, http.StatusForbidden, apiError("cross-site request refused"))
		}
		// A cross-site form cannot send application/json without a CORS preflight.
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return writeJSON(w, http.StatusUnsupportedMediaType, apiError("Content-Type must be application/json"))
		}
		if _, err := h.app.engine.Flow(slug); err != nil {
			return h.flowError(w, r, err, false)
		}
		answer, status, msg := readJSONAnswer(w, r)
		if status != 0 {
			return writeJSON(w, status, apiError(msg))
		}
		id := executionFor(h.app.flowExecutions(r, h.Prefix), slug)
		if id == "" {
			return writeJSON(w, http.StatusGone, apiError("no execution of this flow is in progress; GET the flow first"))
		}
		if res, err = h.app.engine.Answer(r.Context(), id, fr, answer); err != nil {
			return h.flowError(w, r, err, false)
		}
	}
	if err := h.applyResult(w, r, slug, res); err != nil {
		return h.flowError(w, r, err, false)
	}
	return writeJSON(w, http.StatusOK, res.Response)
}

// readJSONAnswer reads one JSON object of at most 64 KiB.
func readJSONAnswer(w http.ResponseWriter, r *http.Request) (map[string]any, int, string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFlowBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, "request body over 64 KiB"
		}
		return nil, http.StatusBadRequest, "request body could not be read"
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil || answer == nil {
		return nil, http.StatusBadRequest, "request body must be a JSON object"
	}
	return answer, 0, ""
}
