package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

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
		Usage: "<validate|convert|keygen|import|export|flow|user> ...",
		Short: "Manages flowgate blueprints, keys and users",
		Long: `
Offline subcommands read files: validate, convert, keygen.
Online subcommands talk to a running gateway's admin endpoint (--address,
default Caddy's): import, export, flow list|delete,
user add|passwd|list|delete|sessions|revoke|unlock.`,
		CobraFunc: BuildCommand,
	})
}

// BuildCommand adds the flowgate subcommands to cmd (exported for tests).
func BuildCommand(cmd *cobra.Command) {
	var address string
	cmd.PersistentFlags().StringVar(&address, "address", "", "admin API address of the running gateway (default: Caddy's)")
	admin := func(method, uri string, body io.Reader, contentType string) ([]byte, error) {
		addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, "", "")
		if err != nil {
			return nil, err
		}
		hdr := http.Header{}
		if contentType != "" {
			hdr.Set("Content-Type", contentType)
		}
		resp, err := caddycmd.AdminAPIRequest(addr, method, uri, hdr, body)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}

	cmd.AddCommand(&cobra.Command{
		Use:   "validate <file>...",
		Short: "Checks blueprints without applying them (exit 1 naming the entry on error)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := validateFiles(args...); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "valid")
			return nil
		},
	})

	var to string
	convert := &cobra.Command{
		Use:   "convert <file> --to json|yaml",
		Short: "Re-encodes a blueprint as JSON or YAML on stdout",
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
}

func flowCommand(admin func(method, uri string, body io.Reader, contentType string) ([]byte, error)) *cobra.Command {
	flow := &cobra.Command{Use: "flow", Short: "Manages flows of the running gateway"}
	flow.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Lists the flows (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			out, err := admin(http.MethodGet, "/flowgate/flows", nil, "")
			return printResult(c, out, err)
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

func userCommand(admin func(method, uri string, body io.Reader, contentType string) ([]byte, error)) *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users of the running gateway"}
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
			out, err := admin(http.MethodPut, "/flowgate/users/"+url.PathEscape(args[0])+"/password", bytes.NewReader(body), "application/json")
			return printResult(c, out, err)
		},
	}
	passwd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password as one line from stdin, without a prompt")
	simple := func(use, short, method, suffix string, nargs int) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(nargs),
			RunE: func(c *cobra.Command, args []string) error {
				uri := "/flowgate/users"
				if nargs == 1 {
					uri += "/" + url.PathEscape(args[0]) + suffix
				}
				out, err := admin(method, uri, nil, "")
				return printResult(c, out, err)
			},
		}
	}
	user.AddCommand(add, passwd,
		simple("list", "Lists users", http.MethodGet, "", 0),
		simple("delete <username>", "Deletes a user and their sessions", http.MethodDelete, "", 1),
		simple("sessions <username>", "Lists a user's sessions", http.MethodGet, "/sessions", 1),
		simple("revoke <username>", "Ends every session of a user", http.MethodDelete, "/sessions", 1),
		simple("unlock <username>", "Lifts a brute-force lock on a user", http.MethodPost, "/unlock", 1),
	)
	return user
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

// validateFiles checks blueprints as the gateway would, against the built-in
// flows, without touching any store.
func validateFiles(paths ...string) error {
	e, err := flowengine.New(flowengine.Options{Store: memory.New(nil), Stages: stages.Types(), Policies: compilePolicies})
	if err != nil {
		return err
	}
	set, err := blueprint.ReadPaths(paths...)
	if err != nil {
		return err
	}
	return set.Apply(context.Background(), e)
}
