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
	"path/filepath"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "flowgate",
		Usage: "<validate|convert|keygen|import|export|user> ...",
		Short: "Manages flowgate blueprints, keys and users",
		Long: `
Offline subcommands read files: validate, convert, keygen.
Online subcommands talk to a running gateway's admin endpoint (--address,
default Caddy's): import, export, user add|passwd|list|delete|sessions|revoke|unlock.`,
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
}

func userCommand(admin func(method, uri string, body io.Reader, contentType string) ([]byte, error)) *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users of the running gateway"}
	var email, name, groups string
	var passwordStdin bool
	add := &cobra.Command{
		Use:   "add <username>",
		Short: "Adds a user (asks for the password, or reads it from stdin with --password-stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
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
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
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
	passwd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
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

func readPassword(c *cobra.Command, fromStdin bool) (string, error) {
	if !fromStdin {
		fmt.Fprint(c.ErrOrStderr(), "Password: ")
	}
	line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
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
