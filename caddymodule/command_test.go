package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/spf13/cobra"
)

// secrets returns a readSecret that hands out answers one by one, as
// term.ReadPassword would for each line typed.
func secrets(answers ...string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if len(answers) == 0 {
			return nil, io.EOF
		}
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}
}

func TestPromptPassword(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		want    string
		wantErr string
	}{
		{"confirmed", []string{"s3cret pw", "s3cret pw"}, "s3cret pw", ""},
		{"mismatch", []string{"s3cret", "s3cert"}, "", "do not match"},
		{"empty", []string{"", ""}, "", "empty password"},
		{"no confirmation", []string{"s3cret"}, "", "EOF"},
		{"nothing typed", nil, "", "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prompts bytes.Buffer
			got, err := promptPassword(&prompts, secrets(tc.answers...))
			if tc.wantErr == "" && (err != nil || got != tc.want) {
				t.Fatalf("promptPassword = %q, %v; want %q", got, err, tc.want)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("promptPassword = %q, %v; want an error containing %q", got, err, tc.wantErr)
			}
			if len(tc.answers) > 0 && tc.answers[0] != "" && strings.Contains(prompts.String(), tc.answers[0]) {
				t.Fatalf("the password was written out: %q", prompts.String())
			}
		})
	}
	var prompts bytes.Buffer
	promptPassword(&prompts, secrets("a", "a"))
	if p := prompts.String(); p != "Password: \nPassword (again): \n" {
		t.Fatalf("prompts %q", p)
	}
}

func TestReadPasswordLine(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{"newline", "s3cret\n", "s3cret", ""},
		{"CRLF", "s3cret\r\n", "s3cret", ""},
		{"no newline at EOF", "s3cret", "s3cret", ""},
		{"spaces kept", " s3 cret \n", " s3 cret ", ""},
		{"only the first line", "first\nsecond\n", "first", ""},
		{"empty line", "\n", "", "empty password"},
		{"empty input", "", "", "empty password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPasswordLine(strings.NewReader(tc.in))
			if tc.wantErr == "" && (err != nil || got != tc.want) {
				t.Fatalf("readPasswordLine(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("readPasswordLine(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
		})
	}
	if _, err := readPasswordLine(iotest.ErrReader(errors.New("broken pipe"))); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("read error: %v", err)
	}
}

// A password piped in (not a terminal) is read as one line, asked once, with a
// prompt only without --password-stdin.
func TestReadPasswordNotTerminal(t *testing.T) {
	pipe := func(t *testing.T, data string) io.Reader {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go func() { w.WriteString(data); w.Close() }()
		return r
	}
	for _, tc := range []struct {
		name       string
		in         func(t *testing.T) io.Reader
		fromStdin  bool
		wantPrompt string
	}{
		{"pipe file", func(t *testing.T) io.Reader { return pipe(t, "piped-pw\nignored\n") }, false, "Password: "},
		{"pipe file, --password-stdin", func(t *testing.T) io.Reader { return pipe(t, "piped-pw\n") }, true, ""},
		{"reader", func(*testing.T) io.Reader { return strings.NewReader("piped-pw\r\n") }, false, "Password: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cobra.Command{}
			var stderr bytes.Buffer
			c.SetIn(tc.in(t))
			c.SetErr(&stderr)
			got, err := readPassword(c, tc.fromStdin)
			if err != nil || got != "piped-pw" {
				t.Fatalf("readPassword = %q, %v", got, err)
			}
			if stderr.String() != tc.wantPrompt {
				t.Fatalf("stderr %q, want %q", stderr.String(), tc.wantPrompt)
			}
		})
	}
}

// Names are refused before the password is asked, and escaped in admin URLs.
func TestUserCommandNames(t *testing.T) {
	var uris []string
	admin := func(method, uri string, body io.Reader, contentType string) ([]byte, error) {
		uris = append(uris, method+" "+uri)
		return []byte("{}"), nil
	}
	run := func(stdin string, args ...string) error {
		cmd := userCommand(admin)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(args)
		return cmd.Execute()
	}
	if err := run("pw\n", "add", "ops/alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "'/'") {
		t.Fatalf("add with a slash: %v", err)
	}
	if err := run("pw\n", "add", "alice", "--email", "Alice <a@example.com>", "--password-stdin"); err == nil {
		t.Fatal("add with a display-name email accepted")
	}
	if len(uris) != 0 {
		t.Fatalf("refused names reached the admin API: %v", uris)
	}
	for _, args := range [][]string{
		{"add", "Jürgen Groß", "--password-stdin"},
		{"passwd", "Jürgen Groß", "--password-stdin"},
		{"delete", "50%"},
		{"sessions", "a b"},
		{"unlock", "a?b#c"},
	} {
		if err := run("pw\n", args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	want := []string{
		"POST /flowgate/users",
		"PUT /flowgate/users/J%C3%BCrgen%20Gro%C3%9F/password",
		"DELETE /flowgate/users/50%25",
		"GET /flowgate/users/a%20b/sessions",
		"POST /flowgate/users/a%3Fb%23c/unlock",
	}
	if strings.Join(uris, "\n") != strings.Join(want, "\n") {
		t.Fatalf("admin URIs:\n%s\nwant:\n%s", strings.Join(uris, "\n"), strings.Join(want, "\n"))
	}
}
