package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "flowgate",
		Usage: "<validate|convert|keygen|import|export|flow|user|explain> ...",
		Short: "Manages flowgate blueprints, keys and users",
		Long: `
Offline subcommands read files: validate, convert, keygen (validate --address
or --config checks the files against a running gateway instead).
Online subcommands talk to a running gateway's admin endpoint: import, export,
flow list|delete, user add|set|passwd|list|delete|sessions|revoke|unlock|mfa,
explain. The endpoint is --address, else the admin address of --config (a
Caddyfile or JSON config, with --adapter, read as caddy reload reads it), else
that of ./Caddyfile if there is one, else Caddy's default localhost:2019.
Lists print tables; --json prints the admin API's JSON.`,
		CobraFunc: BuildCommand,
	})
}

// adminFunc sends one request to the running gateway's admin API and returns
// the body of a successful answer.
type adminFunc func(method, uri string, body io.Reader, contentType string) ([]byte, error)

// adminTarget is how the online commands find the running gateway: the
// --address, --config and --adapter flags.
type adminTarget struct {
	address, config, adapter string
}

// BuildCommand adds the flowgate subcommands to cmd (exported for tests).
func BuildCommand(cmd *cobra.Command) {
	target := &adminTarget{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&target.address, "address", "", "admin API address of the running gateway (default: from --config, else Caddy's)")
	pf.StringVarP(&target.config, "config", "c", "", "Caddyfile or JSON config to read the admin address from, as caddy reload does (default: ./Caddyfile if there is one)")
	pf.StringVarP(&target.adapter, "adapter", "a", "", "name of the adapter of --config (as caddy reload)")
	pf.Bool("json", false, "print the admin API's JSON instead of a table")
	admin := adminFunc(target.request)

	var online bool
	validate := &cobra.Command{
		Use:   "validate <file>... [--address <addr> | --config <Caddyfile> | --online]",
		Short: "Checks blueprints without applying them (exit 1 naming the entry on error)",
		Long: `Checks blueprint files as an import would, without applying anything.
Alone it reads the files only: a file that uses a stage or policy which only
the running gateway defines is refused. With --address, --config or --online
it reads the running gateway's flows, stages and policies (GET
/flowgate/config) and checks the files merged onto them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if online || target.address != "" || target.config != "" {
				live, err := admin(http.MethodGet, "/flowgate/config?format=yaml", nil, "")
				if err != nil {
					return fmt.Errorf("reading the running gateway's configuration: %w", err)
				}
				if err := validateFilesOnto(live, args...); err != nil {
					return err
				}
				printWarnings(c.ErrOrStderr(), fileWarnings(args...))
				fmt.Fprintln(c.OutOrStdout(), "valid (merged onto the running gateway's flows, stages and policies)")
				return nil
			}
			if err := validateFiles(args...); err != nil {
				return offlineHint(err)
			}
			printWarnings(c.ErrOrStderr(), fileWarnings(args...))
			fmt.Fprintln(c.OutOrStdout(), "valid")
			return nil
		},
	}
	validate.Flags().BoolVar(&online, "online", false, "check against the running gateway at the default (or --config's) admin address")
	cmd.AddCommand(validate)

	var to string
	convert := &cobra.Command{
		Use:   "convert <file> --to json|yaml",
		Short: "Re-encodes a blueprint (flowgate's or authentik's) as flowgate JSON or YAML on stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			out, err := blueprint.Convert(args[0], data, blueprint.Format(to))
			if err != nil {
				return err
			}
			printWarnings(c.ErrOrStderr(), fileWarnings(args[0]))
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	convert.Flags().StringVar(&to, "to", "json", "json or yaml")
	cmd.AddCommand(convert)

	cmd.AddCommand(&cobra.Command{
		Use:   "keygen",
		Short: "Prints a new secret_keys pair (hash key, block key)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			h, b := NewKeyPair()
			fmt.Fprintf(c.OutOrStdout(), "secret_keys %s %s\n", h, b)
			return nil
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "import <file>",
		Short: "Applies a blueprint to the running gateway (live at once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			out, err := admin(http.MethodPost, "/flowgate/import?name="+url.QueryEscape(filepath.Base(args[0])), bytes.NewReader(data), "application/yaml")
			if err == nil && apiErrorMessage(out) == "" {
				printWarnings(c.ErrOrStderr(), fileWarnings(args[0]))
			}
			return printResult(c, out, err)
		},
	})

	var flow, format string
	export := &cobra.Command{
		Use:   "export --flow <slug> [--format yaml|json]",
		Short: "Prints a running gateway's flow as a self-contained blueprint",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if flow == "" {
				return errors.New("--flow is required")
			}
			out, err := admin(http.MethodGet, "/flowgate/flows/"+url.PathEscape(flow)+"/export?format="+url.QueryEscape(format), nil, "")
			return printResult(c, out, err)
		},
	}
	export.Flags().StringVar(&flow, "flow", "", "flow slug")
	export.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	cmd.AddCommand(export)

	cmd.AddCommand(userCommand(admin))
	cmd.AddCommand(flowCommand(admin))
	cmd.AddCommand(explainCommand(admin))
	cmd.AddCommand(inviteCommand(admin))
}

func flowCommand(admin adminFunc) *cobra.Command {
	flow := &cobra.Command{Use: "flow", Short: "Manages flows of the running gateway"}
	flow.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Lists the flows: slug, designation, order, stages, the one each designation selects",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			out, err := admin(http.MethodGet, "/flowgate/flows", nil, "")
			return printList(c, out, err, writeFlowTable)
		},
	}, &cobra.Command{
		Use:   "delete <slug>",
		Short: "Deletes a flow (its stages and policies stay; a blueprint entry with state: absent does the same at load)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			out, err := admin(http.MethodDelete, "/flowgate/flows/"+url.PathEscape(args[0]), nil, "")
			return printResult(c, out, err)
		},
	})
	return flow
}

func userCommand(admin adminFunc) *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users of the running gateway"}
	userURI := func(name string) string { return "/flowgate/users/" + url.PathEscape(name) }
	var email, name, groups string
	var passwordStdin bool
	add := &cobra.Command{
		Use:   "add <username>",
		Short: "Adds a user (asks for the password twice, or reads one line from stdin when it is not a terminal)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// Checked here too so that a bad name is refused before the password is asked.
			if err := flowengine.CheckUsername(args[0]); err != nil {
				return err
			}
			if err := flowengine.CheckEmail(email); err != nil {
				return err
			}
			pw, err := readPassword(c, passwordStdin)
			if err != nil {
				return err
			}
			req := userRequest{Username: args[0], Email: email, Name: name, Password: pw}
			if groups != "" {
				req.Groups = strings.Split(groups, ",")
			}
			body, _ := json.Marshal(req)
			out, err := admin(http.MethodPost, "/flowgate/users", bytes.NewReader(body), "application/json")
			return printResult(c, out, err)
		},
	}
	add.Flags().StringVar(&email, "email", "", "email address")
	add.Flags().StringVar(&name, "name", "", "display name")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password as one line from stdin, without a prompt")

	var set userSetFlags
	setCmd := &cobra.Command{
		Use:   "set <username> [--email e] [--name n] [--groups a,b] [--active=true|false]",
		Short: "Changes a user: only the fields given (--groups \"\" clears them; --active=false also ends their sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body, err := set.patch(c)
			if err != nil {
				return err
			}
			out, err := admin(http.MethodPatch, userURI(args[0]), bytes.NewReader(body), "application/json")
			return printResult(c, out, err)
		},
	}
	setCmd.Flags().StringVar(&set.email, "email", "", "email address (\"\" removes it)")
	setCmd.Flags().StringVar(&set.name, "name", "", "display name")
	setCmd.Flags().StringVar(&set.groups, "groups", "", "comma-separated groups, replacing the user's")
	setCmd.Flags().BoolVar(&set.active, "active", true, "whether the user may sign in")

	passwd := &cobra.Command{
		Use:   "passwd <username>",
		Short: "Sets a user's password and ends their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pw, err := readPassword(c, passwordStdin)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(userRequest{Password: pw})
			out, err := admin(http.MethodPut, userURI(args[0])+"/password", bytes.NewReader(body), "application/json")
			return printResult(c, out, err)
		},
	}
	passwd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password as one line from stdin, without a prompt")

	var session string
	revoke := &cobra.Command{
		Use:   "revoke <username> [--session <handle>]",
		Short: "Ends every session of a user, or the one --session names (a handle from user sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			uri := userURI(args[0]) + "/sessions"
			if c.Flags().Changed("session") {
				if session == "" {
					return errors.New("--session wants a handle, as user sessions lists them")
				}
				uri += "/" + url.PathEscape(session)
			}
			out, err := admin(http.MethodDelete, uri, nil, "")
			return printResult(c, out, err)
		},
	}
	revoke.Flags().StringVar(&session, "session", "", "handle of the one session to end (default: all)")

	simple := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				out, err := admin(method, userURI(args[0])+suffix, nil, "")
				return printResult(c, out, err)
			},
		}
	}
	list := &cobra.Command{
		Use: "list", Short: "Lists users: username, email, groups, active, locked, last login, created", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			out, err := admin(http.MethodGet, "/flowgate/users", nil, "")
			return printList(c, out, err, writeUserTable)
		},
	}
	sessions := &cobra.Command{
		Use: "sessions <username>", Short: "Lists a user's sessions, with the handles revoke --session takes", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			out, err := admin(http.MethodGet, userURI(args[0])+"/sessions", nil, "")
			return printList(c, out, err, writeSessionTable)
		},
	}
	user.AddCommand(add, setCmd, passwd, list, sessions, revoke,
		simple("delete <username>", "Deletes a user and their sessions", http.MethodDelete, ""),
		simple("unlock <username>", "Lifts a brute-force lock on a user", http.MethodPost, "/unlock"),
		mfaCommand(admin),
	)
	return user
}

// userSetFlags are the flags of user set; only those given are sent.
type userSetFlags struct {
	email, name, groups string
	active              bool
}

// patch is the PATCH body for the flags given on c, or an error if none is.
func (f *userSetFlags) patch(c *cobra.Command) ([]byte, error) {
	body := map[string]any{}
	if c.Flags().Changed("email") {
		if err := flowengine.CheckEmail(f.email); err != nil {
			return nil, err
		}
		body["email"] = f.email
	}
	if c.Flags().Changed("name") {
		body["name"] = f.name
	}
	if c.Flags().Changed("groups") {
		body["groups"] = splitGroups(f.groups)
	}
	if c.Flags().Changed("active") {
		body["is_active"] = f.active
	}
	if len(body) == 0 {
		return nil, errors.New("nothing to change: give --email, --name, --groups or --active")
	}
	return json.Marshal(body)
}

// readPassword reads a new password. When stdin is a terminal it asks twice
// without echo, so the password shows neither on screen nor in the scrollback,
// and refuses a mismatch; otherwise (a script pipes it in) it reads one line.
// --password-stdin only drops the prompt of the non-terminal case.
func readPassword(c *cobra.Command, fromStdin bool) (string, error) {
	in := c.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		// Restore echo if the user gives up with Ctrl-C at the prompt.
		if state, err := term.GetState(fd); err == nil {
			sig, done := make(chan os.Signal, 1), make(chan struct{})
			signal.Notify(sig, os.Interrupt)
			defer func() { signal.Stop(sig); close(done) }()
			go func() {
				select {
				case <-sig:
					_ = term.Restore(fd, state)
					fmt.Fprintln(c.ErrOrStderr())
					os.Exit(caddy.ExitCodeFailedStartup)
				case <-done:
				}
			}()
		}
		return promptPassword(c.ErrOrStderr(), func() ([]byte, error) { return term.ReadPassword(fd) })
	}
	if !fromStdin {
		fmt.Fprint(c.ErrOrStderr(), "Password: ")
	}
	return readPasswordLine(in)
}

// promptPassword asks for a password and its confirmation on w, reading each
// with readSecret (term.ReadPassword at a terminal).
func promptPassword(w io.Writer, readSecret func() ([]byte, error)) (string, error) {
	ask := func(prompt string) (string, error) {
		fmt.Fprint(w, prompt)
		b, err := readSecret()
		fmt.Fprintln(w) // the user's Enter was not echoed either
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	again, err := ask("Password (again): ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("passwords do not match")
	}
	return pw, nil
}

// readPasswordLine reads one line (its \n or \r\n dropped) from r.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func apiErrorMessage(out []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(out, &e) == nil && e.Error != "" {
		return e.Error
	}
	return ""
}

// printResult writes an admin API answer as it came.
func printResult(c *cobra.Command, out []byte, err error) error {
	if err != nil {
		return err
	}
	if msg := apiErrorMessage(out); msg != "" {
		return errors.New(msg)
	}
	_, err = c.OutOrStdout().Write(out)
	return err
}

// printList writes a list the admin API answered as a table, or with --json
// (or if the answer is not the list the table reads) as it came.
func printList(c *cobra.Command, out []byte, err error, table func(w io.Writer, raw []byte, loc *time.Location) error) error {
	if err != nil {
		return err
	}
	if msg := apiErrorMessage(out); msg != "" {
		return errors.New(msg)
	}
	if asJSON, _ := c.Flags().GetBool("json"); !asJSON {
		var buf bytes.Buffer
		if table(&buf, out, time.Local) == nil {
			_, err = c.OutOrStdout().Write(buf.Bytes())
			return err
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err = c.OutOrStdout().Write(out)
	return err
}

// addressFor is the admin address to use: --address, else the admin listener
// of --config (with --adapter) or of ./Caddyfile, read as caddy reload reads
// it, else Caddy's default.
func (t *adminTarget) addressFor() (string, error) {
	if t.address != "" {
		return t.address, nil
	}
	file := t.config
	if file == "" {
		if t.adapter != "" {
			return "", errors.New("--adapter needs --config")
		}
		if _, err := os.Stat("Caddyfile"); err != nil {
			return caddy.DefaultAdminListen, nil
		}
		file = "Caddyfile" // as caddy reload and caddy stop use it
	}
	addr, err := caddycmd.DetermineAdminAPIAddress("", nil, file, t.adapter)
	if err != nil {
		return "", fmt.Errorf("reading the admin address from %s: %v", file, err)
	}
	return addr, nil
}

// request is the adminFunc of the online commands.
func (t *adminTarget) request(method, uri string, body io.Reader, contentType string) ([]byte, error) {
	addr, err := t.addressFor()
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, hdr, body)
	if err != nil {
		return nil, adminError(addr, err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// adminAnswer is how caddycmd.AdminAPIRequest reports an error status.
var adminAnswer = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// adminError turns caddycmd.AdminAPIRequest's errors into what an operator
// can act on: nothing listening at the address, or the admin API's own
// message without the HTTP wrapping.
func adminError(addr string, err error) error {
	msg := err.Error()
	if m := adminAnswer.FindStringSubmatch(msg); m != nil {
		if text := apiErrorMessage([]byte(m[2])); text != "" {
			return errors.New(text)
		}
		return fmt.Errorf("HTTP %s: %s", m[1], strings.TrimSpace(m[2]))
	}
	if !strings.HasPrefix(msg, "performing request:") {
		return err
	}
	dialErr := dialAdmin(addr)
	if dialErr == nil {
		return err // something listens: the request itself failed
	}
	noGateway := fmt.Sprintf("no gateway's admin endpoint at %s (is Caddy running? use --address or --config)", addr)
	if errors.Is(dialErr, syscall.ECONNREFUSED) || errors.Is(dialErr, fs.ErrNotExist) {
		return errors.New(noGateway)
	}
	return fmt.Errorf("%s: %v", noGateway, dialErr)
}

// dialAdmin tells whether anything accepts connections at an admin address.
func dialAdmin(addr string) error {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return nil // not ours to judge: report the request's own error
	}
	host := na.JoinHostPort(0)
	if na.IsUnixNetwork() {
		host, _, _ = strings.Cut(host, "|") // socket permission bits
	}
	conn, err := net.DialTimeout(na.Network, host, 3*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// offlineHint adds to an offline validation error that names a stage or
// policy the files do not define that the files were checked alone.
func offlineHint(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, `unknown stage "`) && !strings.Contains(msg, `unknown policy "`) {
		return err
	}
	sep := " "
	if strings.Contains(msg, "\n") {
		sep = "\n"
	}
	return fmt.Errorf("%w%s(validate checks the files alone; stages and policies defined in the running gateway are not seen: pass --address or --config to check against it)", err, sep)
}

// validateFiles checks blueprints as the gateway would, on their own (as on an
// empty store), without touching any store.
func validateFiles(paths ...string) error {
	e, err := offlineEngine()
	if err != nil {
		return err
	}
	set, err := blueprint.ReadPaths(paths...)
	if err != nil {
		return err
	}
	return set.Apply(context.Background(), e)
}

// validateFilesOnto checks blueprints as an import into the gateway whose
// configuration (GET /flowgate/config) is live would: merged onto it, on a
// throwaway engine.
func validateFilesOnto(live []byte, paths ...string) error {
	e, err := offlineEngine()
	if err != nil {
		return err
	}
	ctx := context.Background()
	bp, err := blueprint.Parse("the running gateway's configuration", live)
	if err == nil {
		err = bp.Apply(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("the running gateway's configuration does not load here (is this caddy older than the gateway's?): %w", err)
	}
	set, err := blueprint.ReadPaths(paths...)
	if err != nil {
		return err
	}
	return set.Apply(ctx, e)
}

func offlineEngine() (*flowengine.Engine, error) {
	return flowengine.New(flowengine.Options{Store: memory.New(nil), Stages: stages.Types(), Policies: compilePolicies})
}
