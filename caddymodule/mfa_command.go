package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// mfaCommand is caddy flowgate user mfa list|reset, on the admin API's
// /flowgate/users/{name}/mfa routes.
func mfaCommand(admin adminFunc) *cobra.Command {
	mfa := &cobra.Command{Use: "mfa", Short: "Lists or resets a user's second factors (MFA devices)"}
	uri := func(name string) string { return "/flowgate/users/" + url.PathEscape(name) + "/mfa" }
	list := &cobra.Command{
		Use:   "list <username>",
		Short: "Lists a user's devices: ID, class, name, created, last used (never a secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			out, err := admin(http.MethodGet, uri(args[0]), nil, "")
			return printList(c, out, err, writeDeviceTable)
		},
	}
	var device string
	reset := &cobra.Command{
		Use:   "reset <username> [--device <id>]",
		Short: "Removes every device of a user (they set up a new one at their next sign-in), or the one --device names",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			target := uri(args[0])
			if c.Flags().Changed("device") {
				if device == "" {
					return errors.New("--device wants an ID, as user mfa list shows them")
				}
				target += "/" + url.PathEscape(device)
			}
			out, err := admin(http.MethodDelete, target, nil, "")
			return printResult(c, out, err)
		},
	}
	reset.Flags().StringVar(&device, "device", "", "ID of the one device to remove (default: all)")
	mfa.AddCommand(list, reset)
	return mfa
}

// deviceRow is an item of GET /flowgate/users/{name}/mfa.
type deviceRow struct {
	ID       string    `json:"id"`
	Class    string    `json:"class"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created_at"`
	LastUsed time.Time `json:"last_used"`
}

// writeDeviceTable prints devices in the order the gateway lists them (oldest
// first).
func writeDeviceTable(w io.Writer, raw []byte, loc *time.Location) error {
	var rows []deviceRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("the gateway's device list is not what this command reads: %v", err)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no devices")
		return err
	}
	t := newTable(w, "ID", "CLASS", "NAME", "CREATED", "LAST USED")
	for _, d := range rows {
		lastUsed := when(d.LastUsed, loc)
		if d.LastUsed.IsZero() {
			lastUsed = "never"
		}
		t.row(d.ID, d.Class, d.Name, when(d.Created, loc), lastUsed)
	}
	return t.flush()
}
