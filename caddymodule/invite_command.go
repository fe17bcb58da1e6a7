package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// inviteCommand is caddy flowgate invite create|list|revoke.
func inviteCommand(admin adminFunc) *cobra.Command {
	invite := &cobra.Command{Use: "invite", Short: "Manages invitation links of the running gateway"}
	var req inviteRequest
	var fixed []string
	create := &cobra.Command{
		Use:   "create --flow <slug> [--expires 72h] [--single-use] [--email a@b] [--fixed key=value …]",
		Short: "Creates an invitation to a flow guarded by an invitation stage and prints it with its link",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if req.Flow == "" {
				return errors.New("--flow is required")
			}
			if len(fixed) > 0 {
				req.FixedData = map[string]any{}
				for _, kv := range fixed {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("--fixed %q: want key=value", kv)
					}
					req.FixedData[k] = v
				}
			}
			body, _ := json.Marshal(req)
			out, err := admin(http.MethodPost, "/flowgate/invites", bytes.NewReader(body), "application/json")
			return printResult(c, out, err)
		},
	}
	create.Flags().StringVar(&req.Flow, "flow", "", "slug of the flow the invitation opens")
	create.Flags().StringVar(&req.Expires, "expires", "72h", "how long the invitation is valid")
	create.Flags().BoolVar(&req.SingleUse, "single-use", false, "let only one enrollment start from it")
	create.Flags().StringVar(&req.Email, "email", "", "email address put into the prompt data")
	create.Flags().StringArrayVar(&fixed, "fixed", nil, "key=value put into the prompt data (repeatable; attributes.<key> lands in the user's attributes)")

	list := &cobra.Command{
		Use: "list", Short: "Lists live invitations: flow, expiry, single use, uses, email, link", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			out, err := admin(http.MethodGet, "/flowgate/invites", nil, "")
			return printList(c, out, err, writeInviteTable)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke <id>", Short: "Deletes an invitation, so its link opens nothing", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			out, err := admin(http.MethodDelete, "/flowgate/invites/"+url.PathEscape(args[0]), nil, "")
			return printResult(c, out, err)
		},
	}
	invite.AddCommand(create, list, revoke)
	return invite
}

// inviteRow is an item of GET /flowgate/invites.
type inviteRow struct {
	ID        string    `json:"id"`
	Flow      string    `json:"flow"`
	Expires   time.Time `json:"expires_at"`
	SingleUse bool      `json:"single_use"`
	Uses      int       `json:"uses"`
	Email     string    `json:"email"`
	Created   time.Time `json:"created_at"`
	URL       string    `json:"url"`
}

// writeInviteTable prints invitations in the order the gateway lists them
// (oldest first).
func writeInviteTable(w io.Writer, raw []byte, loc *time.Location) error {
	var rows []inviteRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("the gateway's invitation list is not what this command reads: %v", err)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no invitations")
		return err
	}
	t := newTable(w, "ID", "FLOW", "EXPIRES", "SINGLE USE", "USES", "EMAIL", "CREATED", "URL")
	for _, r := range rows {
		t.row(r.ID, r.Flow, when(r.Expires, loc), yesNo(&r.SingleUse), fmt.Sprint(r.Uses), r.Email, when(r.Created, loc), r.URL)
	}
	return t.flush()
}
