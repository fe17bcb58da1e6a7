package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// The tables the online commands print for people (--json prints the admin
// API's answer instead). Fields an older gateway does not send show as "-".

// userRow is an item of GET /flowgate/users.
type userRow struct {
	Username  string     `json:"username"`
	Email     string     `json:"email"`
	Groups    []string   `json:"groups"`
	IsActive  bool       `json:"is_active"`
	Locked    *bool      `json:"locked"`
	LastLogin *time.Time `json:"last_login"`
	Created   time.Time  `json:"created_at"`
}

// writeUserTable prints users sorted by username.
func writeUserTable(w io.Writer, raw []byte, loc *time.Location) error {
	var rows []userRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("the gateway's user list is not what this command reads: %v", err)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no users")
		return err
	}
	sort.Slice(rows, func(i, j int) bool { return strings.ToLower(rows[i].Username) < strings.ToLower(rows[j].Username) })
	t := newTable(w, "USERNAME", "EMAIL", "GROUPS", "ACTIVE", "LOCKED", "LAST LOGIN", "CREATED")
	for _, u := range rows {
		lastLogin := "-"
		switch {
		case u.LastLogin != nil && !u.LastLogin.IsZero():
			lastLogin = when(*u.LastLogin, loc)
		case u.Locked != nil:
			// A gateway that reports locks leaves last_login out for a user
			// who never signed in.
			lastLogin = "never"
		}
		t.row(u.Username, u.Email, strings.Join(u.Groups, ","), yesNo(&u.IsActive), yesNo(u.Locked), lastLogin, when(u.Created, loc))
	}
	return t.flush()
}

// sessionRow is an item of GET /flowgate/users/{name}/sessions.
type sessionRow struct {
	Handle    string    `json:"handle"`
	Created   time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	Expires   time.Time `json:"expires_at"`
	ClientIP  string    `json:"client_ip"`
	UserAgent string    `json:"user_agent"`
	Methods   []string  `json:"auth_methods"`
}

// maxUserAgent is how much of a user agent a session table shows.
const maxUserAgent = 40

// writeSessionTable prints sessions in the order the gateway lists them
// (oldest first).
func writeSessionTable(w io.Writer, raw []byte, loc *time.Location) error {
	var rows []sessionRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("the gateway's session list is not what this command reads: %v", err)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	t := newTable(w, "HANDLE", "CREATED", "LAST SEEN", "EXPIRES", "CLIENT IP", "USER AGENT", "METHODS")
	for _, s := range rows {
		t.row(s.Handle, when(s.Created, loc), when(s.LastSeen, loc), when(s.Expires, loc), s.ClientIP,
			truncate(s.UserAgent, maxUserAgent), strings.Join(s.Methods, ","))
	}
	return t.flush()
}

// flowRow is an item of GET /flowgate/flows.
type flowRow struct {
	Slug        string `json:"slug"`
	Designation string `json:"designation"`
	Order       int    `json:"order"`
	Stages      int    `json:"stages"`
	Selected    *bool  `json:"selected"`
	BuiltIn     *bool  `json:"builtin"`
}

// writeFlowTable prints flows in selection order: by designation, then as
// selection by designation tries them (operators' flows before built-in ones,
// then order, then slug).
func writeFlowTable(w io.Writer, raw []byte, _ *time.Location) error {
	var rows []flowRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("the gateway's flow list is not what this command reads: %v", err)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no flows")
		return err
	}
	builtIn := func(f flowRow) bool { return f.BuiltIn != nil && *f.BuiltIn }
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch {
		case a.Designation != b.Designation:
			return a.Designation < b.Designation
		case builtIn(a) != builtIn(b):
			return !builtIn(a)
		case a.Order != b.Order:
			return a.Order < b.Order
		}
		return a.Slug < b.Slug
	})
	t := newTable(w, "SLUG", "DESIGNATION", "ORDER", "STAGES", "SELECTED", "BUILT-IN")
	for _, f := range rows {
		t.row(f.Slug, f.Designation, strconv.Itoa(f.Order), strconv.Itoa(f.Stages), yesNo(f.Selected), yesNo(f.BuiltIn))
	}
	return t.flush()
}

// table aligns columns with two spaces between them.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// row writes one line. Cells are made safe for a terminal first: a user
// agent (or any value a client chose) could otherwise carry escape sequences
// that rewrite the operator's screen, or tabs and newlines that break the
// table. An empty cell shows as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		c = printable(c)
		if c == "" {
			c = "-"
		}
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// printable replaces control, format and other non-printing characters (and
// invalid UTF-8) with U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (!unicode.IsPrint(r) && r != ' ') {
			return '\uFFFD'
		}
		return r
	}, s)
}

// truncate shortens s to n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// when formats a time for a table, in loc, to the minute; "-" if unset.
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

// yesNo shows a boolean; "-" when the gateway did not send it.
func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "yes"
	}
	return "no"
}
