package templates_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/templates"
)

func mailData() templates.MailData {
	return templates.MailData{Link: "https://app.example.com/.flowgate/flows/rec/?flow_token=a%2Bb&x=1", FlowTitle: "Recovery",
		Username: `<b>"bob"</b>`, Brand: templates.Brand{Name: "Acme"}, Expiry: "15m"}
}

func TestMailDefaults(t *testing.T) {
	p, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	subject, text, html, err := p.RenderMail(mailData())
	if err != nil {
		t.Fatal(err)
	}
	d := mailData()
	if subject != "Continue signing in to Acme" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{d.Link, "Recovery", d.Username, "15m", "Acme"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{`href="https://app.example.com/.flowgate/flows/rec/?flow_token=a%2Bb&amp;x=1"`,
		"&lt;b&gt;&#34;bob&#34;&lt;/b&gt;", "15m", "Acme"} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<b>") {
		t.Errorf("username not escaped:\n%s", html)
	}
}

func TestMailOverride(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"email_subject.txt": "Your\n{{.Brand.Name}} link\n",
		"email_html.html":   `<p>Hi {{.Username}}: <a href="{{.Link}}">go</a></p>`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := templates.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	subject, text, html, err := p.RenderMail(mailData())
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Your Acme link" {
		t.Errorf("subject %q: the override (on one line) should win", subject)
	}
	if !strings.Contains(text, "expires in 15m") {
		t.Errorf("text should stay built in:\n%s", text)
	}
	if !strings.HasPrefix(html, "<p>Hi &lt;b&gt;") || !strings.Contains(html, "a%2Bb&amp;x=1") {
		t.Errorf("html override: %s", html)
	}
}

func TestMailOverrideChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "email_text.txt"), []byte("{{.Nope}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := templates.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "email_text.txt") {
		t.Fatalf("Check = %v, want an error naming email_text.txt", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "email_text.txt"), []byte("{{if}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := templates.New(dir); err == nil || !strings.Contains(err.Error(), "email_text.txt") {
		t.Fatalf("New = %v, want a parse error naming email_text.txt", err)
	}
}
