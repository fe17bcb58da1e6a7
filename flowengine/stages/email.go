package stages

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("email", newEmail) }

// EmailConfig configures the email stage.
type EmailConfig struct {
	// Subject of the mail; when empty, the mail template's (built in:
	// "Continue signing in").
	Subject string `json:"subject,omitempty"`
	// TokenExpiry bounds how long the mailed link works: a Go or authentik
	// duration (default 30m).
	TokenExpiry string `json:"token_expiry,omitempty"`
	// ActivateUserOnSuccess activates the pending user when the link is followed.
	ActivateUserOnSuccess bool `json:"activate_user_on_success,omitempty"`
	// UseGlobalSettings is accepted for authentik exports and ignored: the mail
	// server is always the global smtp block.
	UseGlobalSettings *bool `json:"use_global_settings,omitempty"`
}

// SendFailedMessage is what the visitor sees when the mail server refused or
// could not be reached; the flow stays on the stage and can be retried.
const SendFailedMessage = "We could not send the email. Try again."

const defaultEmailSubject = "Continue signing in"

// State keys of the email stage.
const (
	emailSent   = "sent"   // a mail went out (or, for an unknown address, pretended to)
	emailFailed = "failed" // the last send failed: show the retry page
)

type email struct {
	cfg    EmailConfig
	expiry time.Duration
}

func newEmail(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &email{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	d, err := flowengine.ParseDuration(s.cfg.TokenExpiry)
	if err != nil {
		return nil, fmt.Errorf("token_expiry: %w", err)
	}
	if d < 0 {
		return nil, fmt.Errorf("token_expiry: must not be negative")
	}
	if d == 0 {
		d = 30 * time.Minute
	}
	s.expiry = d
	return s, nil
}

// Challenge: none before the first mail (Submit sends it at once) and none when
// the mailed link was followed (Submit continues); otherwise the "check your
// inbox" page, without fields.
func (s *email) Challenge(_ context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	sent, _ := sc.State[emailSent].(bool)
	failed, _ := sc.State[emailFailed].(bool)
	switch {
	case sent && sc.Restored():
		return nil, nil
	case sent:
		return &flowengine.Challenge{
			Messages: []string{"Check your inbox: we sent you a link to continue."},
			Data:     map[string]any{"email_sent": true},
		}, nil
	case failed:
		return &flowengine.Challenge{Data: map[string]any{"email_sent": false}}, nil
	}
	return nil, nil
}

// Submit sends the mail (again, when the visitor answers the inbox page) or,
// after the link was followed, ends the stage.
func (s *email) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	if sent, _ := sc.State[emailSent].(bool); sent && sc.Restored() {
		return s.finish(ctx, sc)
	}
	if sc.Services.Mailer == nil {
		return flowengine.Outcome{}, errors.New("no mail server is configured (the smtp global option)")
	}
	to, username, err := s.recipient(ctx, sc)
	if err != nil {
		return flowengine.Outcome{}, err
	}
	// The handle changes whether or not a mail goes out, so an unknown address
	// looks the same as a known one.
	token := sc.LinkToken(s.expiry)
	if to == "" {
		sc.DropLinkToken()
		sc.State[emailSent], sc.State[emailFailed] = true, false
		return flowengine.Wait(), nil
	}
	link := s.link(sc, token)
	mail, err := s.compose(sc, to, username, link)
	if err != nil {
		sc.DropLinkToken()
		return flowengine.Outcome{}, err
	}
	if err := sc.Services.Mailer.Send(ctx, mail); err != nil {
		sc.DropLinkToken()
		sc.State[emailSent], sc.State[emailFailed] = false, true
		return flowengine.Invalid(nil, SendFailedMessage), nil
	}
	sc.State[emailSent], sc.State[emailFailed] = true, false
	return flowengine.Wait(), nil
}

// finish activates the pending user if configured and ends the stage.
func (s *email) finish(ctx context.Context, sc *flowengine.StageContext) (flowengine.Outcome, error) {
	delete(sc.State, emailSent)
	if !s.cfg.ActivateUserOnSuccess {
		return flowengine.Continue(), nil
	}
	user, err := sc.PendingUser(ctx)
	if errors.Is(err, flowengine.ErrNotFound) || user == nil {
		return flowengine.Continue(), nil
	}
	if err != nil {
		return flowengine.Outcome{}, err
	}
	if user.IsActive {
		return flowengine.Continue(), nil
	}
	prev := *user
	u := *user
	u.IsActive = true
	if err := sc.Store.UpdateUserIf(ctx, &u, &prev); err != nil {
		return flowengine.Outcome{}, fmt.Errorf("activating user: %w", err)
	}
	return flowengine.Continue(), nil
}

// compose writes the mail through Services.MailRenderer, else with the
// built-in wording; a configured subject wins over the template's.
func (s *email) compose(sc *flowengine.StageContext, to, username, link string) (flowengine.Mail, error) {
	mail := flowengine.Mail{To: to, Subject: s.cfg.Subject}
	if r := sc.Services.MailRenderer; r != nil {
		data := flowengine.MailData{Link: link, FlowTitle: flowTitle(sc), Username: username, Expiry: expiryText(s.expiry)}
		subject, text, html, err := r.RenderMail("email", data)
		if err != nil {
			return flowengine.Mail{}, fmt.Errorf("rendering the mail: %w", err)
		}
		if mail.Subject == "" {
			mail.Subject = subject
		}
		mail.Text, mail.HTML = text, html
	} else {
		mail.Text, mail.HTML = mailText(sc, link, s.expiry), mailHTML(sc, link, s.expiry)
	}
	if mail.Subject == "" {
		mail.Subject = defaultEmailSubject
	}
	return mail, nil
}

// expiryText is a duration without trailing zero units: "30m", "2h", "1h30m".
func expiryText(d time.Duration) string {
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// recipient is the pending user's address, else the prompt's email; "" when
// there is none (an unknown address in a recovery flow). The name is the
// pending user's username, else the prompt's.
func (s *email) recipient(ctx context.Context, sc *flowengine.StageContext) (to, username string, err error) {
	user, err := sc.PendingUser(ctx)
	if err != nil && !errors.Is(err, flowengine.ErrNotFound) {
		return "", "", err
	}
	if user != nil {
		return user.Email, user.Username, nil
	}
	if err == nil {
		if prompt, ok := sc.Context[flowengine.CtxPromptData].(map[string]any); ok {
			if v, ok := prompt[promptEmail].(string); ok {
				name, _ := prompt[promptUsername].(string)
				return strings.TrimSpace(v), strings.TrimSpace(name), nil
			}
		}
	}
	return "", "", nil
}

// link is the absolute URL of the flow with the token: Services.BaseURL, else
// the request's scheme and host, then the gateway's prefix.
func (s *email) link(sc *flowengine.StageContext, token string) string {
	base := strings.TrimRight(sc.Services.BaseURL, "/")
	prefix := ""
	if r := sc.Request; r != nil {
		if base == "" {
			scheme := r.Scheme
			if scheme == "" {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
		}
		prefix = strings.TrimRight(r.Prefix, "/")
	}
	return base + prefix + "/flows/" + url.PathEscape(sc.Flow.Slug) + "/?flow_token=" + url.QueryEscape(token)
}

func flowTitle(sc *flowengine.StageContext) string {
	if sc.Flow.Title != "" {
		return sc.Flow.Title
	}
	if sc.Flow.Name != "" {
		return sc.Flow.Name
	}
	return sc.Flow.Slug
}

func mailText(sc *flowengine.StageContext, link string, expiry time.Duration) string {
	return fmt.Sprintf("To continue (%s), open this link:\n\n%s\n\nThe link works once and expires in %s.\n"+
		"If you did not ask for it, ignore this email.\n", flowTitle(sc), link, expiry)
}

func mailHTML(sc *flowengine.StageContext, link string, expiry time.Duration) string {
	l := html.EscapeString(link)
	return fmt.Sprintf(`<!doctype html><html><body><p>To continue (%s), open this link:</p>`+
		`<p><a href="%s">%s</a></p><p>The link works once and expires in %s.<br>`+
		`If you did not ask for it, ignore this email.</p></body></html>`, html.EscapeString(flowTitle(sc)), l, l, expiry)
}
