package stages_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func TestEmailConfig(t *testing.T) {
	checkConfigs(t, "email", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"subject": "Reset", "token_expiry": "minutes=30",
			"activate_user_on_success": true, "use_global_settings": true}, ""},
		{"go duration", map[string]any{"token_expiry": "2h"}, ""},
		{"bad duration", map[string]any{"token_expiry": "soon"}, "token_expiry"},
		{"unknown key", map[string]any{"template": "x"}, `unknown config key "template"`},
	})
}

// fakeMailer records mails; while fail is set it refuses them.
type fakeMailer struct {
	mu   sync.Mutex
	sent []flowengine.Mail
	fail bool
}

func (m *fakeMailer) Send(_ context.Context, mail flowengine.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("connection refused")
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *fakeMailer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

const emailFlows = `
version: 1
stages:
  - {name: id, type: identification, config: {user_fields: [username, email]}}
  - {name: mail, type: email, config: {subject: "Reset your password", token_expiry: "minutes=15"}}
  - {name: ask, type: prompt, config: {fields: [{field_key: username, type: username, required: true}, {field_key: email, type: email, required: true}]}}
  - {name: write, type: user_write, config: {create_users_as_inactive: true}}
  - {name: verify, type: email, config: {activate_user_on_success: true}}
  - {name: login, type: user_login}
flows:
  - {slug: rec, designation: recovery, stages: [{stage: id, order: 1}, {stage: mail, order: 2}, {stage: login, order: 3}]}
  - {slug: enroll, designation: enrollment, stages: [{stage: ask, order: 1}, {stage: write, order: 2}, {stage: verify, order: 3}, {stage: login, order: 4}]}
`

func emailEngine(t *testing.T, e *stageEnv, m flowengine.Mailer) *flowengine.Engine {
	t.Helper()
	return emailEngineWith(t, e, flowengine.Services{Mailer: m})
}

func emailEngineWith(t *testing.T, e *stageEnv, services flowengine.Services) *flowengine.Engine {
	t.Helper()
	ctx := context.Background()
	eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock,
		Services: services})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse("e.yaml", []byte(emailFlows))
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Apply(ctx, eng); err != nil {
		t.Fatal(err)
	}
	return eng
}

func emailRequest(slug string) *flowengine.Request {
	return &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Prefix: "/.flowgate",
		Path: "/.flowgate/flows/" + slug + "/", Query: url.Values{}, ClientIP: "192.0.2.7"}
}

var linkRE = regexp.MustCompile(`https://app\.example\.com/\.flowgate/flows/([a-z]+)/\?flow_token=([A-Za-z0-9_.%-]+)`)

// mailToken checks the mail's link and returns its token.
func mailToken(t *testing.T, m flowengine.Mail, slug string) string {
	t.Helper()
	match := linkRE.FindStringSubmatch(m.Text)
	if match == nil || match[1] != slug || !strings.Contains(m.HTML, `href="`+match[0]+`"`) {
		t.Fatalf("no link to %s in mail:\n%s\n%s", slug, m.Text, m.HTML)
	}
	token, err := url.QueryUnescape(match[2])
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func checkSent(t *testing.T, res *flowengine.Result, sent bool) {
	t.Helper()
	r := res.Response
	if r.Type != flowengine.TypeChallenge || r.Stage.Type != "email" || len(r.Fields) != 0 || r.Data["email_sent"] != sent {
		t.Fatalf("email page: %+v", r)
	}
}

// The mailed link continues the flow without the first browser's handle, once,
// and only before it expires.
func TestEmailLinkResumesOnce(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{}
	eng := emailEngine(t, e, m)
	req := emailRequest("rec")
	res, err := eng.Start(ctx, "rec", req)
	if err != nil {
		t.Fatal(err)
	}
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": "alice"}); err != nil {
		t.Fatal(err)
	}
	checkSent(t, res, true)
	if m.count() != 1 {
		t.Fatalf("%d mails, want 1", m.count())
	}
	mail := m.sent[0]
	if mail.To != "alice@example.com" || mail.Subject != "Reset your password" || !strings.Contains(mail.Text, "15m") {
		t.Fatalf("mail: %+v", mail)
	}
	token := mailToken(t, mail, "rec")
	// The page in the first browser can be shown again; it does not spend the link.
	if again, err := eng.Resume(ctx, res.ExecutionID, req); err != nil {
		t.Fatal(err)
	} else {
		checkSent(t, again, true)
	}
	if _, err := eng.ResumeToken(ctx, token+"x", emailRequest("rec")); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("tampered token: %v, want ErrExpired", err)
	}
	other := emailRequest("rec")
	other.ClientIP = "198.51.100.9"
	done, err := eng.ResumeToken(ctx, token, other)
	if err != nil {
		t.Fatal(err)
	}
	if done.Response.Type != flowengine.TypeRedirect || done.NewSession == nil || done.NewSession.UserID != e.alice.ID {
		t.Fatalf("after the link: %+v", done)
	}
	if _, err := eng.ResumeToken(ctx, token, other); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("link followed twice: %v, want ErrExpired", err)
	}
	if _, err := eng.Resume(ctx, res.ExecutionID, req); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("first browser after the link: %v, want ErrExpired", err)
	}
}

func TestEmailLinkExpires(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{}
	eng := emailEngine(t, e, m)
	req := emailRequest("rec")
	res, err := eng.Start(ctx, "rec", req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	token := mailToken(t, m.sent[0], "rec")
	// A handle that is not a mailed link resumes nothing through ResumeToken.
	res2, err := eng.Start(ctx, "rec", req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ResumeToken(ctx, res2.ExecutionID, req); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("plain handle as a token: %v, want ErrExpired", err)
	}
	e.clock.Advance(15*time.Minute + time.Second)
	if _, err := eng.ResumeToken(ctx, token, req); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("expired link: %v, want ErrExpired", err)
	}
}

// An unknown address gets the same page and no mail.
func TestEmailUnknownAddressSendsNothing(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{}
	eng := emailEngine(t, e, m)
	req := emailRequest("rec")
	var pages []flowengine.Response
	for _, uid := range []string{"alice", "nobody@example.com"} {
		res, err := eng.Start(ctx, "rec", req)
		if err != nil {
			t.Fatal(err)
		}
		if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": uid}); err != nil {
			t.Fatal(err)
		}
		checkSent(t, res, true)
		pages = append(pages, res.Response)
	}
	if m.count() != 1 {
		t.Fatalf("%d mails, want 1 (alice only)", m.count())
	}
	if strings.Join(pages[0].Messages, "|") != strings.Join(pages[1].Messages, "|") || pages[0].Stage != pages[1].Stage {
		t.Fatalf("known and unknown address differ:\n%+v\n%+v", pages[0], pages[1])
	}
}

// A send failure shows a clear message and keeps the flow where it was; the
// next try sends.
func TestEmailSendFailureIsRetryable(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{fail: true}
	eng := emailEngine(t, e, m)
	req := emailRequest("rec")
	res, err := eng.Start(ctx, "rec", req)
	if err != nil {
		t.Fatal(err)
	}
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": "alice"}); err != nil {
		t.Fatal(err)
	}
	checkSent(t, res, false)
	if len(res.Response.Messages) == 0 || res.Response.Messages[0] != stages.SendFailedMessage {
		t.Fatalf("failure messages: %v", res.Response.Messages)
	}
	if _, err := eng.ResumeToken(ctx, res.ExecutionID, req); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("handle after a failed send as a token: %v, want ErrExpired", err)
	}
	m.fail = false
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	checkSent(t, res, true)
	if m.count() != 1 || m.sent[0].To != "alice@example.com" {
		t.Fatalf("mails after retry: %+v", m.sent)
	}
	if done, err := eng.ResumeToken(ctx, mailToken(t, m.sent[0], "rec"), req); err != nil || done.NewSession == nil {
		t.Fatalf("link after retry: %+v %v", done, err)
	}
}

// Enrollment: the mail goes to the prompt's address and the link activates the
// user that user_write created inactive.
func TestEmailActivatesEnrolledUser(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{}
	eng := emailEngine(t, e, m)
	req := emailRequest("enroll")
	res, err := eng.Start(ctx, "enroll", req)
	if err != nil {
		t.Fatal(err)
	}
	if res, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"username": "carol", "email": "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	checkSent(t, res, true)
	carol, err := e.store.GetUserByUsername(ctx, "carol")
	if err != nil || carol.IsActive {
		t.Fatalf("carol before the link: %+v %v", carol, err)
	}
	if m.count() != 1 || m.sent[0].To != "carol@example.com" {
		t.Fatalf("mails: %+v", m.sent)
	}
	done, err := eng.ResumeToken(ctx, mailToken(t, m.sent[0], "enroll"), emailRequest("enroll"))
	if err != nil || done.NewSession == nil || done.NewSession.UserID != carol.ID {
		t.Fatalf("after the link: %+v %v", done, err)
	}
	if carol, err = e.store.GetUser(ctx, carol.ID); err != nil || !carol.IsActive {
		t.Fatalf("carol after the link: %+v %v", carol, err)
	}
}

// fakeRenderer writes mails from the data it gets, and records it.
type fakeRenderer struct {
	mu   sync.Mutex
	got  []flowengine.MailData
	kind string
}

func (r *fakeRenderer) RenderMail(kind string, d flowengine.MailData) (string, string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kind = kind
	r.got = append(r.got, d)
	return "Template subject", "text " + d.Link + " for " + d.Username + " in " + d.Expiry,
		`<a href="` + d.Link + `">` + d.FlowTitle + `</a>`, nil
}

// Services.MailRenderer writes the mail; a configured subject still wins over
// the template's.
func TestEmailMailRenderer(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	m := &fakeMailer{}
	r := &fakeRenderer{}
	eng := emailEngineWith(t, e, flowengine.Services{Mailer: m, MailRenderer: r})
	req := emailRequest("rec")
	res, err := eng.Start(ctx, "rec", req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"uid_field": "alice"}); err != nil {
		t.Fatal(err)
	}
	if m.count() != 1 || len(r.got) != 1 {
		t.Fatalf("%d mails, %d renders; want 1", m.count(), len(r.got))
	}
	mail, d := m.sent[0], r.got[0]
	if r.kind != "email" || d.Username != "alice" || d.Expiry != "15m" || d.FlowTitle == "" {
		t.Fatalf("render data: %q %+v", r.kind, d)
	}
	if mail.Subject != "Reset your password" || mail.Text != "text "+d.Link+" for alice in 15m" {
		t.Fatalf("mail: %+v", mail)
	}
	mailToken(t, mail, "rec")

	// Without a configured subject the template's is used.
	req = emailRequest("enroll")
	if res, err = eng.Start(ctx, "enroll", req); err != nil {
		t.Fatal(err)
	}
	if _, err = eng.Answer(ctx, res.ExecutionID, req, map[string]any{"username": "carol", "email": "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	if m.count() != 2 {
		t.Fatalf("%d mails, want 2", m.count())
	}
	if mail := m.sent[1]; mail.To != "carol@example.com" || mail.Subject != "Template subject" || r.got[1].Username != "carol" {
		t.Fatalf("mail: %+v, data %+v", mail, r.got[1])
	}
}
