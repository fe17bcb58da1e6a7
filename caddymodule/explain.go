package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
)

// explainBody is the request of POST /flowgate/explain, and what the CLI sends.
type explainBody struct {
	// Flow is a flow slug; or Designation picks the flow as the gateway would.
	Flow        string `json:"flow,omitempty"`
	Designation string `json:"designation,omitempty"`
	// User is a username (404 if there is none); empty for an anonymous visitor.
	User string `json:"user,omitempty"`
	// SignedIn: the user already has a session (default: they sign in during the flow).
	SignedIn bool `json:"signed_in,omitempty"`
	// The request that starts the flow: client IP, path (with an optional
	// ?query, where next is read), method (GET), host, scheme (http) and headers.
	IP      string            `json:"ip,omitempty"`
	Path    string            `json:"path,omitempty"`
	Method  string            `json:"method,omitempty"`
	Host    string            `json:"host,omitempty"`
	Scheme  string            `json:"scheme,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// request builds the flow request the body describes; its errors are the
// caller's (400).
func (b explainBody) request() (*flowengine.Request, error) {
	r := &flowengine.Request{Method: "GET", Scheme: "http", Path: "/", Host: b.Host, Header: map[string][]string{}}
	if b.Method != "" {
		if strings.IndexFunc(b.Method, func(c rune) bool { return c < 'A' || c > 'Z' }) >= 0 {
			return nil, fmt.Errorf("method %q: want an upper-case HTTP method", b.Method)
		}
		r.Method = b.Method
	}
	switch b.Scheme {
	case "":
	case "http", "https":
		r.Scheme = b.Scheme
	default:
		return nil, fmt.Errorf("scheme %q: want http or https", b.Scheme)
	}
	if b.IP != "" {
		ip := net.ParseIP(b.IP)
		if ip == nil {
			return nil, fmt.Errorf("ip %q is not an IP address", b.IP)
		}
		r.ClientIP = ip.String()
	}
	if b.Path != "" {
		path, rawQuery, _ := strings.Cut(b.Path, "?")
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("path %q must start with /", b.Path)
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, fmt.Errorf("path %q: query: %v", b.Path, err)
		}
		r.Path, r.Query = path, q
	}
	for k, v := range b.Headers {
		if k == "" || strings.ContainsFunc(k, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == ':' }) {
			return nil, fmt.Errorf("header name %q is not valid", k)
		}
		r.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	return r, nil
}

// query turns the body into the engine's question, for user (nil: anonymous).
func (b explainBody) query(user *flowengine.User) (flowengine.ExplainQuery, error) {
	req, err := b.request()
	if err != nil {
		return flowengine.ExplainQuery{}, err
	}
	if b.SignedIn && user == nil {
		return flowengine.ExplainQuery{}, errors.New("signed_in needs a user")
	}
	return flowengine.ExplainQuery{Flow: b.Flow, Designation: b.Designation, User: user, SignedIn: b.SignedIn, Request: req}, nil
}

// adminExplain answers POST /flowgate/explain: what the running gateway would
// do with the request described, as JSON. Nothing is stored or counted.
func adminExplain(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App) error {
	var in explainBody
	if err := decodeAdminJSON(w, r, &in); err != nil {
		return err
	}
	var user *flowengine.User
	if in.User != "" {
		u, err := app.store.GetUserByUsername(ctx, in.User)
		if errors.Is(err, flowengine.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no user %q", in.User)
		}
		if err != nil {
			return apiErr(http.StatusServiceUnavailable, "loading user: %v", err)
		}
		user = u
	}
	q, err := in.query(user)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	x, err := app.engine.Explain(ctx, q)
	switch {
	case errors.Is(err, flowengine.ErrNotFound):
		return apiErr(http.StatusNotFound, "no flow %q", in.Flow)
	case errors.Is(err, flowengine.ErrInvalidQuery):
		return apiErr(http.StatusBadRequest, "%v", err)
	case err != nil:
		return apiErr(http.StatusServiceUnavailable, "explaining: %v", err)
	}
	return writeJSON(w, http.StatusOK, x)
}

// explainCommand is `caddy flowgate explain`: online through the admin API, or
// offline on blueprint files with --blueprint.
func explainCommand(admin func(method, uri string, body io.Reader, contentType string) ([]byte, error)) *cobra.Command {
	var body explainBody
	var headers, blueprints []string
	var groups string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain --flow <slug> | --designation <designation> [--user <name> [--signed-in]] [--ip …] [--path …] [--header k=v]…",
		Short: "Shows the plan a request would get: flow choice, policy results, stages kept, dropped and skipped",
		Long: `Shows what the gateway would do with one request, without running anything:
which flow a designation chooses, the flow's authentication requirement and
policies, the stages evaluate_on_plan drops at planning, and the stages whose
re_evaluate_policies skip them just before they run (evaluated as if the user
were identified). A user who is not --signed-in is an anonymous visitor when
the flow starts. Online it asks the running gateway (POST /flowgate/explain);
with --blueprint it reads blueprint files and explains offline, taking the
user from their seed users (or --groups for a user they do not define).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if (body.Flow == "") == (body.Designation == "") {
				return errors.New("give either --flow or --designation")
			}
			groupsSet := c.Flags().Changed("groups")
			if groupsSet && (len(blueprints) == 0 || body.User == "") {
				return errors.New("--groups needs --user and --blueprint: online, users come from the gateway")
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok {
					return fmt.Errorf("--header %q: want name=value", h)
				}
				if body.Headers == nil {
					body.Headers = map[string]string{}
				}
				body.Headers[k] = v
			}
			var out []byte
			var err error
			if len(blueprints) > 0 {
				var synthetic []string
				if groupsSet {
					synthetic = splitGroups(groups)
				}
				out, err = explainOffline(c.Context(), body, blueprints, synthetic)
			} else {
				raw, _ := json.Marshal(body)
				out, err = admin(http.MethodPost, "/flowgate/explain", bytes.NewReader(raw), "application/json")
				if err == nil {
					if msg := apiErrorMessage(out); msg != "" {
						err = errors.New(msg)
					}
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "  "); err != nil {
					return fmt.Errorf("the answer is not JSON: %v", err)
				}
				buf.WriteByte('\n')
				_, err = c.OutOrStdout().Write(buf.Bytes())
				return err
			}
			var x flowengine.Explanation
			if err := json.Unmarshal(out, &x); err != nil {
				return fmt.Errorf("the answer is not an explanation: %v", err)
			}
			_, err = io.WriteString(c.OutOrStdout(), x.Text())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&body.Flow, "flow", "", "flow slug to explain")
	f.StringVar(&body.Designation, "designation", "", "explain the flow this designation chooses instead")
	f.StringVar(&body.User, "user", "", "username (default: an anonymous visitor)")
	f.BoolVar(&body.SignedIn, "signed-in", false, "the user already has a session (default: they sign in during the flow)")
	f.StringVar(&body.IP, "ip", "", "client IP address")
	f.StringVar(&body.Path, "path", "", "request path, with an optional ?query (next is read from it) (default /)")
	f.StringVar(&body.Method, "method", "", "request method (default GET)")
	f.StringVar(&body.Host, "host", "", "request host")
	f.StringVar(&body.Scheme, "scheme", "", "http or https (default http)")
	f.StringArrayVar(&headers, "header", nil, "request header name=value (repeatable)")
	f.StringArrayVar(&blueprints, "blueprint", nil, "explain offline on these blueprint files or directories (repeatable)")
	f.StringVar(&groups, "groups", "", "offline: comma-separated groups of a user the blueprints do not define")
	f.BoolVar(&asJSON, "json", false, "print the explanation as JSON")
	return cmd
}

// explainOffline explains on an engine built from blueprint files over a
// throwaway memory store, as validate does, and returns the JSON answer the
// admin API would give.
// groups, if not nil, are those of a synthetic user the blueprints do not define.
func explainOffline(ctx context.Context, body explainBody, paths []string, groups []string) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	st := memory.New(nil)
	e, err := flowengine.New(flowengine.Options{Store: st, Stages: stages.Types(), Policies: compilePolicies})
	if err != nil {
		return nil, err
	}
	set, err := blueprint.ReadPaths(paths...)
	if err != nil {
		return nil, err
	}
	if err := set.Apply(ctx, e); err != nil {
		return nil, err
	}
	var user *flowengine.User
	if body.User != "" {
		u, err := st.GetUserByUsername(ctx, body.User)
		switch {
		case err == nil && groups != nil:
			return nil, fmt.Errorf("user %q is defined by the blueprints: drop --groups", body.User)
		case err == nil:
			user = u
		case errors.Is(err, flowengine.ErrNotFound) && groups != nil:
			user = &flowengine.User{ID: flowengine.NewID(), Username: body.User, IsActive: true, Groups: groups}
		case errors.Is(err, flowengine.ErrNotFound):
			return nil, fmt.Errorf("no seed user %q in the blueprints (give --groups for one they do not define)", body.User)
		default:
			return nil, err
		}
	}
	q, err := body.query(user)
	if err != nil {
		return nil, err
	}
	x, err := e.Explain(ctx, q)
	if err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// splitGroups reads a comma-separated group list; "" is no group.
func splitGroups(s string) []string {
	out := []string{}
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}
