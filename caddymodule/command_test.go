package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddyserver/caddy/v2"
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

// The tables of the online commands, from admin API answers with every field
// and from an older gateway's without the newer ones.
func TestListTables(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table func(io.Writer, []byte, *time.Location) error
		raw   string
		want  string
	}{
		{"users", writeUserTable, `[
			{"id":"2","username":"bob","email":"bob@example.com","is_active":false,"created_at":"2024-05-02T08:00:00Z","locked":true},
			{"id":"1","username":"Alice","email":"alice@example.com","is_active":true,"groups":["staff","dev"],"created_at":"2024-05-01T09:30:00Z","locked":false,"last_login":"2024-06-01T12:34:56Z"}]`,
			"USERNAME  EMAIL              GROUPS     ACTIVE  LOCKED  LAST LOGIN        CREATED\n" +
				"Alice     alice@example.com  staff,dev  yes     no      2024-06-01 12:34  2024-05-01 09:30\n" +
				"bob       bob@example.com    -          no      yes     never             2024-05-02 08:00\n"},
		{"users, older gateway", writeUserTable, `[{"id":"1","username":"alice","is_active":true,"created_at":"2024-05-01T09:30:00Z"}]`,
			"USERNAME  EMAIL  GROUPS  ACTIVE  LOCKED  LAST LOGIN  CREATED\n" +
				"alice     -      -       yes     -       -           2024-05-01 09:30\n"},
		{"no users", writeUserTable, `[]`, "no users\n"},
		{"sessions", writeSessionTable, `[{"handle":"0123456789abcdef","created_at":"2024-05-01T09:30:00Z","last_seen":"2024-05-01T10:00:00Z",
			"expires_at":"2024-05-02T09:30:00Z","client_ip":"192.0.2.1","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
			"auth_methods":["password","totp"]},
			{"created_at":"2024-05-03T09:30:00Z","last_seen":"2024-05-03T09:30:00Z","expires_at":"2024-05-04T09:30:00Z","user_agent":"evil\u001b[2J\u001b]0;owned\u0007\tx\ny"}]`,
			"HANDLE            CREATED           LAST SEEN         EXPIRES           CLIENT IP  USER AGENT                                METHODS\n" +
				"0123456789abcdef  2024-05-01 09:30  2024-05-01 10:00  2024-05-02 09:30  192.0.2.1  Mozilla/5.0 (X11; Linux x86_64) AppleWe…  password,totp\n" +
				"-                 2024-05-03 09:30  2024-05-03 09:30  2024-05-04 09:30  -          evil\uFFFD[2J\uFFFD]0;owned\uFFFD\uFFFDx\uFFFDy" + strings.Repeat(" ", 20) + "-\n"},
		{"no sessions", writeSessionTable, `[]`, "no sessions\n"},
		{"flows", writeFlowTable, `[
			{"slug":"default-invalidation","designation":"invalidation","order":0,"stages":1,"builtin":true,"selected":true},
			{"slug":"default-authentication","designation":"authentication","order":0,"stages":3,"builtin":true,"selected":false},
			{"slug":"staff-login","designation":"authentication","order":10,"stages":4,"builtin":false,"selected":true},
			{"slug":"b-login","designation":"authentication","order":5,"stages":2,"builtin":false,"selected":false}]`,
			"SLUG                    DESIGNATION     ORDER  STAGES  SELECTED  BUILT-IN\n" +
				"b-login                 authentication  5      2       no        no\n" +
				"staff-login             authentication  10     4       yes       no\n" +
				"default-authentication  authentication  0      3       no        yes\n" +
				"default-invalidation    invalidation    0      1       yes       yes\n"},
		{"flows, older gateway", writeFlowTable, `[{"slug":"x","name":"X","designation":"enrollment","order":0,"stages":1}]`,
			"SLUG  DESIGNATION  ORDER  STAGES  SELECTED  BUILT-IN\n" +
				"x     enrollment   0      1       -         -\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.table(&buf, []byte(tc.raw), time.UTC); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Fatalf("table:\n%s\nwant:\n%s", buf.String(), tc.want)
			}
		})
	}
	if err := writeUserTable(io.Discard, []byte(`{"error":"x"}`), time.UTC); err == nil {
		t.Fatal("an answer that is no list made a table")
	}
}

// fakeAdmin records the requests a command sends and answers each with reply.
type fakeAdmin struct {
	reqs  []string // "METHOD URI BODY"
	reply string
}

func (f *fakeAdmin) do(method, uri string, body io.Reader, contentType string) ([]byte, error) {
	req := method + " " + uri
	if body != nil {
		b, _ := io.ReadAll(body)
		req += " " + string(b)
	}
	f.reqs = append(f.reqs, req)
	return []byte(f.reply), nil
}

// runUnder runs args under a root that has the persistent --json flag, as
// BuildCommand's does, with sub (built on the fake admin) as its subcommand.
func runUnder(t *testing.T, sub *cobra.Command, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "flowgate", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().Bool("json", false, "")
	root.AddCommand(sub)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// Lists print a table, or with --json the answer as it came; an answer the
// table cannot read is printed as it came too.
func TestListJSONFlag(t *testing.T) {
	const users = `[{"username":"alice","is_active":true,"created_at":"2024-05-01T09:30:00Z"}]`
	f := &fakeAdmin{reply: users}
	out, err := runUnder(t, userCommand(f.do), "user", "list")
	if err != nil || !strings.HasPrefix(out, "USERNAME") || !strings.Contains(out, "alice") {
		t.Fatalf("user list: %v\n%s", err, out)
	}
	out, err = runUnder(t, userCommand(f.do), "user", "list", "--json")
	if err != nil || out != users+"\n" {
		t.Fatalf("user list --json: %v %q", err, out)
	}
	f.reply = `[{"slug":"x","designation":"enrollment"}]`
	out, err = runUnder(t, flowCommand(f.do), "flow", "list", "--json")
	if err != nil || out != f.reply+"\n" {
		t.Fatalf("flow list --json: %v %q", err, out)
	}
	f.reply = `{"unexpected":true}`
	out, err = runUnder(t, userCommand(f.do), "user", "sessions", "alice")
	if err != nil || out != f.reply+"\n" {
		t.Fatalf("an answer that is no list: %v %q", err, out)
	}
	f.reply = `{"error":"no user \"alice\""}`
	if _, err := runUnder(t, userCommand(f.do), "user", "sessions", "alice"); err == nil || err.Error() != `no user "alice"` {
		t.Fatalf("an error answer: %v", err)
	}
}

// user set sends only the flags given; user revoke one session or all.
func TestUserSetAndRevoke(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"email", []string{"set", "Ada Lovelace", "--email", "ada@example.com"}, `PATCH /flowgate/users/Ada%20Lovelace {"email":"ada@example.com"}`, ""},
		{"remove email", []string{"set", "ada", "--email", ""}, `PATCH /flowgate/users/ada {"email":""}`, ""},
		{"name and groups", []string{"set", "ada", "--name", "Ada L.", "--groups", "staff, dev"}, `PATCH /flowgate/users/ada {"groups":["staff","dev"],"name":"Ada L."}`, ""},
		{"clear groups", []string{"set", "ada", "--groups", ""}, `PATCH /flowgate/users/ada {"groups":[]}`, ""},
		{"deactivate", []string{"set", "ada", "--active=false"}, `PATCH /flowgate/users/ada {"is_active":false}`, ""},
		{"activate", []string{"set", "ada", "--active"}, `PATCH /flowgate/users/ada {"is_active":true}`, ""},
		{"nothing to change", []string{"set", "ada"}, "", "nothing to change"},
		{"bad email", []string{"set", "ada", "--email", "Ada <ada@example.com>"}, "", "email"},
		{"no user", []string{"set"}, "", "accepts 1 arg"},
		{"revoke all", []string{"revoke", "ada"}, "DELETE /flowgate/users/ada/sessions", ""},
		{"revoke one", []string{"revoke", "ada", "--session", "0123456789abcdef"}, "DELETE /flowgate/users/ada/sessions/0123456789abcdef", ""},
		{"revoke one, escaped", []string{"revoke", "a/b", "--session", "x/y"}, "DELETE /flowgate/users/a%2Fb/sessions/x%2Fy", ""},
		{"revoke an empty handle", []string{"revoke", "ada", "--session", ""}, "", "--session wants a handle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAdmin{reply: "{}"}
			_, err := runUnder(t, userCommand(f.do), append([]string{"user"}, tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if len(f.reqs) != 0 {
					t.Fatalf("a refused command reached the admin API: %v", f.reqs)
				}
				return
			}
			if err != nil || len(f.reqs) != 1 || f.reqs[0] != tc.want {
				t.Fatalf("%v: sent %q, want %q", err, f.reqs, tc.want)
			}
		})
	}
}

// Where the online commands look for the gateway: --address, else --config's
// admin address (a Caddyfile or JSON), else Caddy's default.
func TestAdminAddress(t *testing.T) {
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte("{\n\tadmin localhost:2999\n}\n"), 0o644)
	jsonCfg := filepath.Join(dir, "caddy.json")
	os.WriteFile(jsonCfg, []byte(`{"admin":{"listen":"unix//run/caddy-admin.sock"}}`), 0o644)
	noAdmin := filepath.Join(dir, "plain.caddyfile")
	os.WriteFile(noAdmin, []byte(":8080 {\n\trespond ok\n}\n"), 0o644)
	for _, tc := range []struct {
		name    string
		target  adminTarget
		want    string
		wantErr string
	}{
		{"address", adminTarget{address: "localhost:3000", config: caddyfile}, "localhost:3000", ""},
		{"Caddyfile", adminTarget{config: caddyfile}, "localhost:2999", ""},
		{"JSON", adminTarget{config: jsonCfg}, "unix//run/caddy-admin.sock", ""},
		{"Caddyfile without admin", adminTarget{config: noAdmin}, caddy.DefaultAdminListen, ""},
		{"Caddyfile named otherwise, adapter given", adminTarget{config: noAdmin, adapter: "caddyfile"}, caddy.DefaultAdminListen, ""},
		{"nothing", adminTarget{}, caddy.DefaultAdminListen, ""},
		{"adapter alone", adminTarget{adapter: "caddyfile"}, "", "--adapter needs --config"},
		{"missing config", adminTarget{config: filepath.Join(dir, "nope")}, "", "reading the admin address from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.target.addressFor()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("addressFor = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("addressFor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The admin API's errors reach the operator as its message; nothing listening
// is said so, with what to do.
func TestAdminErrors(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type")+" "+string(body))
		switch r.URL.Path {
		case "/flowgate/users/nobody":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no user \"nobody\""}`)
		case "/plain":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream gone")
		default:
			io.WriteString(w, `{"username":"ada"}`)
		}
	}))
	defer srv.Close()
	target := &adminTarget{address: srv.Listener.Addr().String()}
	out, err := target.request(http.MethodPatch, "/flowgate/users/ada", strings.NewReader(`{"name":"Ada"}`), "application/json")
	if err != nil || string(out) != `{"username":"ada"}` {
		t.Fatalf("request: %q %v", out, err)
	}
	if len(got) != 1 || got[0] != `PATCH /flowgate/users/ada application/json {"name":"Ada"}` {
		t.Fatalf("sent %q", got)
	}
	if _, err := target.request(http.MethodDelete, "/flowgate/users/nobody", nil, ""); err == nil || err.Error() != `no user "nobody"` {
		t.Fatalf("404: %v", err)
	}
	if _, err := target.request(http.MethodGet, "/plain", nil, ""); err == nil || err.Error() != "HTTP 502: upstream gone" {
		t.Fatalf("502: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = (&adminTarget{address: closed}).request(http.MethodGet, "/flowgate/users", nil, "")
	want := "no gateway's admin endpoint at " + closed + " (is Caddy running? use --address or --config)"
	if err == nil || err.Error() != want {
		t.Fatalf("nothing listening: %v\nwant: %s", err, want)
	}
	sock := "unix/" + filepath.Join(t.TempDir(), "admin.sock")
	if _, err := (&adminTarget{address: sock}).request(http.MethodGet, "/flowgate/users", nil, ""); err == nil ||
		!strings.HasPrefix(err.Error(), "no gateway's admin endpoint at "+sock) {
		t.Fatalf("no socket: %v", err)
	}
}

// Offline, validate says that the files were checked alone when they use a
// stage or policy they do not define; merged onto a gateway's configuration
// that defines it, the same file is valid.
func TestValidateOfflineAndOnto(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "extra.yaml")
	os.WriteFile(file, []byte("version: 1\nflows:\n  - {slug: hello, designation: enrollment, stages: [{stage: live-stage, order: 1}]}\n"), 0o644)
	err := offlineHint(validateFiles(file))
	if err == nil || !strings.Contains(err.Error(), `extra.yaml:3: flow hello: stages[0]: unknown stage "live-stage" (validate checks the files alone; stages and policies defined in the running gateway are not seen: pass --address or --config to check against it)`) {
		t.Fatalf("offline: %v", err)
	}
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("version: 1\nflows:\n  - {slug: x, designation: sideways}\n"), 0o644)
	if err := offlineHint(validateFiles(other)); err == nil || strings.Contains(err.Error(), "validate checks the files alone") {
		t.Fatalf("hint on an error that is not about a missing stage: %v", err)
	}
	live := []byte("version: 1\nstages:\n  - {name: live-stage, type: dummy}\n")
	if err := validateFilesOnto(live, file); err != nil {
		t.Fatalf("onto a gateway defining the stage: %v", err)
	}
	if err := validateFilesOnto([]byte("version: 1\nstages:\n  - {name: s, type: nonsense}\n"), file); err == nil ||
		!strings.Contains(err.Error(), "the running gateway's configuration does not load here") {
		t.Fatalf("a live configuration that does not load: %v", err)
	}
}
