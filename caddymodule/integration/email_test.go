package integration

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/emersion/go-smtp"
)

// mailbox is an in-process SMTP server on loopback that keeps what it receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
	port int
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: b}, nil }

type mailSession struct{ box *mailbox }

func (*mailSession) Reset()                               {}
func (*mailSession) Logout() error                        { return nil }
func (*mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, string(b))
	s.box.mu.Unlock()
	return nil
}

func (b *mailbox) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &mailbox{port: ln.Addr().(*net.TCPAddr).Port}
	s := smtp.NewServer(b)
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 5*time.Second, 5*time.Second
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	return b
}

const recoverFlow = `version: 1
stages:
  - {name: rec-id, type: identification, config: {user_fields: [username, email]}}
  - {name: rec-mail, type: email, config: {subject: "Sign in to the demo"}}
  - {name: rec-login, type: user_login}
flows:
  - slug: mail-login
    name: Sign in by email
    designation: recovery
    stages:
      - {stage: rec-id, order: 10}
      - {stage: rec-mail, order: 20}
      - {stage: rec-login, order: 30}
`

func smtpBlock(port int) string {
	return fmt.Sprintf("smtp {\n\t\t\thost 127.0.0.1\n\t\t\tport %d\n\t\t\ttls none\n\t\t\ttimeout 2s\n\t\t\tfrom \"Demo <noreply@example.com>\"\n\t\t}", port)
}

var mailLinkRE = regexp.MustCompile(`http://localhost:9080/\.flowgate/flows/mail-login/\?flow_token=[A-Za-z0-9_.%-]+`)

// The user asks for the mail in one browser, follows its link in another and
// ends signed in there; the link works once.
func TestEmailLinkSignsInAnotherBrowser(t *testing.T) {
	box := startMailbox(t)
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("mail.yaml", recoverFlow)
	g.load(smtpBlock(box.port), "")

	api := "/.flowgate/api/v1/flows/mail-login/"
	if _, ch := g.getJSON(api); stage(ch) != "identification" {
		t.Fatalf("first challenge: %v", ch)
	}
	_, ch := g.postJSON(api, map[string]string{"uid_field": "alice"})
	data, _ := ch["data"].(map[string]any)
	if stage(ch) != "email" || data["email_sent"] != true {
		t.Fatalf("after identification: %v", ch)
	}
	msgs := box.all()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	raw := msgs[0]
	for _, want := range []string{"Subject: Sign in to the demo", "To: alice@example.com", "multipart/alternative", "text/plain", "text/html"} {
		if !strings.Contains(raw, want) {
			t.Fatalf("mail lacks %q:\n%s", want, raw)
		}
	}
	decoded, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(raw)))
	link := mailLinkRE.FindString(string(decoded))
	if link == "" {
		t.Fatalf("no link in mail:\n%s", decoded)
	}
	if !strings.Contains(string(decoded), "Hello alice,") { // the built-in mail templates
		t.Fatalf("mail not from the templates:\n%s", decoded)
	}
	path := strings.TrimPrefix(link, base)

	// Another browser: a fresh cookie jar, HTML like a mail client opens it.
	jar, _ := cookiejar.New(nil)
	g.tc.Client.Jar = jar
	resp, _ := g.do("GET", path, "", "Accept: text/html")
	if resp.StatusCode/100 != 3 {
		t.Fatalf("following the link: %d", resp.StatusCode)
	}
	if g.sessionCookie() == nil {
		t.Fatal("no session after following the link")
	}
	if status, hdr := g.upstreamHeaders("/inside"); status != 200 || hdr.Get("Remote-User") != "alice" {
		t.Fatalf("signed in by the link: %d %v", status, hdr)
	}
	// The link is spent; an altered one never worked.
	if resp, _ := g.do("GET", path, ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("link followed again: %d, want 410", resp.StatusCode)
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("flow_token")
	tampered := "/.flowgate/flows/mail-login/?flow_token=" + url.QueryEscape(tok[:len(tok)-2]+"xx")
	if resp, _ := g.do("GET", tampered, ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("tampered link: %d, want 410", resp.StatusCode)
	}
	if resp, _ := g.do("GET", api+"?flow_token=nonsense", ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("nonsense token on the JSON API: %d, want 410", resp.StatusCode)
	}
}

// A dead mail server gives the clear message within the timeout, and the flow
// stays where it was.
func TestEmailDeadServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	g := &gateway{t: t, up: upstream(t), dir: t.TempDir()}
	g.seed = demoUsers(t, g.dir)
	g.withBlueprint("mail.yaml", recoverFlow)
	g.load(smtpBlock(port), "")

	api := "/.flowgate/api/v1/flows/mail-login/"
	g.getJSON(api)
	start := time.Now()
	_, ch := g.postJSON(api, map[string]string{"uid_field": "alice"})
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("answer took %s with a dead mail server", took)
	}
	data, _ := ch["data"].(map[string]any)
	msgs, _ := ch["messages"].([]any)
	if stage(ch) != "email" || data["email_sent"] != false || len(msgs) == 0 || msgs[0] != "We could not send the email. Try again." {
		t.Fatalf("dead mail server: %v", ch)
	}
	// Still on the email stage: the retry page is shown again.
	if _, ch := g.getJSON(api); stage(ch) != "email" {
		t.Fatalf("after the failure: %v", ch)
	}
}

// With base_url the mailed link ignores the request's Host, so a forged Host
// header cannot send a victim's link to another server.
func TestEmailBaseURLIgnoresHost(t *testing.T) {
	src := "{\n\tflowgate {\n\t\tstorage memory\n\t\tsmtp {\n\t\t\thost 127.0.0.1\n\t\t\tfrom noreply@example.com\n\t\t\tbase_url https://auth.example.com/\n\t\t}\n\t}\n}\n:9999 {\n\tflowgate\n}\n"
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil || !strings.Contains(string(out), `"base_url":"https://auth.example.com"`) {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	bad := strings.Replace(src, "https://auth.example.com/", "https://auth.example.com/x?y", 1)
	if _, _, err := adapter.Adapt([]byte(bad), map[string]any{"filename": "Caddyfile"}); err == nil || !strings.Contains(err.Error(), "base_url") {
		t.Fatalf("a base_url with a path: %v", err)
	}
}
