package stages

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("redirect", newRedirect) }

// RedirectMode says where the redirect stage sends the user.
type RedirectMode string

// Redirect modes, with authentik's names.
const (
	// RedirectStatic sends the user to to_url.
	RedirectStatic RedirectMode = "static"
	// RedirectFlow sends the user into the flow target_flow, keeping next.
	RedirectFlow RedirectMode = "flow"
)

// RedirectConfig configures the redirect stage. The stage does not end the flow:
// it sets where the flow goes when it ends (the context's redirect, which wins
// over next), and the later stages still run first. Put it last, or just before
// the user_login an authentication flow must end in.
type RedirectConfig struct {
	// Mode is static or flow (default static).
	Mode RedirectMode `json:"mode,omitempty"`
	// ToURL is where mode static sends the user: a local path, or an absolute
	// http(s) URL that the gateway's next validator (trusted_redirect_hosts)
	// must also accept when the flow ends, or the flow ends at next or "/"
	// instead (required with mode static).
	ToURL string `json:"to_url,omitempty"`
	// TargetStatic is authentik's name for to_url.
	TargetStatic string `json:"target_static,omitempty"`
	// TargetFlow is the slug of the flow mode flow sends the user into
	// (required with mode flow).
	TargetFlow string `json:"target_flow,omitempty"`
	// KeepContext (mode flow) starts the target flow with this flow's
	// prompt_data, pending_user and pending_user_identifier, handed over under
	// a single-use key in the URL (flowengine.CarryParam); default false: the
	// target flow starts with a fresh context and only next carries over.
	KeepContext *bool `json:"keep_context,omitempty"`
}

type redirect struct {
	mode RedirectMode
	to   string // static: the URL; flow: the target flow's slug
	keep bool   // flow: carry the context to the target flow
}

func newRedirect(def flowengine.StageDef) (flowengine.Stage, error) {
	var cfg RedirectConfig
	if err := flowengine.DecodeConfig(def.Config, &cfg); err != nil {
		return nil, err
	}
	to := cfg.ToURL
	switch {
	case to == "":
		to = cfg.TargetStatic
	case cfg.TargetStatic != "" && cfg.TargetStatic != to:
		return nil, errors.New("to_url and target_static differ: set one")
	}
	s := &redirect{mode: cfg.Mode}
	switch s.mode {
	case "", RedirectStatic:
		s.mode = RedirectStatic
		if cfg.TargetFlow != "" {
			return nil, errors.New("target_flow: applies only to mode flow")
		}
		if err := checkRedirectURL(to); err != nil {
			return nil, fmt.Errorf("to_url: %w", err)
		}
		s.to = to
	case RedirectFlow:
		if to != "" {
			return nil, errors.New("to_url: applies only to mode static")
		}
		if cfg.TargetFlow == "" || strings.ContainsAny(cfg.TargetFlow, "/?#\\") || redirectHasControl(cfg.TargetFlow) {
			return nil, fmt.Errorf("target_flow: %q is not a flow slug", cfg.TargetFlow)
		}
		s.to = cfg.TargetFlow
		s.keep = cfg.KeepContext != nil && *cfg.KeepContext
	default:
		return nil, fmt.Errorf("mode: %q is not static or flow", cfg.Mode)
	}
	return s, nil
}

// checkRedirectURL refuses what no next validator accepts: anything but a safe
// local path or an absolute http(s) URL without userinfo. Whether an absolute
// URL's host is trusted is only known per request.
func checkRedirectURL(to string) error {
	if to == "" {
		return errors.New("required with mode static")
	}
	if strings.HasPrefix(to, "/") {
		if _, ok := flowengine.RelativeNext(to, nil); !ok {
			return fmt.Errorf("%q is not a safe local path", to)
		}
		return nil
	}
	u, err := url.Parse(to)
	if err != nil || redirectHasControl(to) || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%q is neither a local path nor an http(s) URL", to)
	}
	return nil
}

func redirectHasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func (*redirect) Challenge(context.Context, *flowengine.StageContext) (*flowengine.Challenge, error) {
	return nil, nil
}

func (s *redirect) Submit(ctx context.Context, sc *flowengine.StageContext, _ flowengine.Answer) (flowengine.Outcome, error) {
	if s.mode == RedirectStatic {
		// The executor passes the context's redirect through the request's
		// next validator when the flow ends, like every redirect it makes:
		// an untrusted host falls back to next, then the default target.
		sc.Context[flowengine.CtxRedirect] = s.to
		return flowengine.Continue(), nil
	}
	prefix := ""
	if sc.Request != nil {
		prefix = strings.TrimRight(sc.Request.Prefix, "/")
	}
	to := prefix + "/flows/" + url.PathEscape(s.to) + "/"
	// next was validated when this flow started; the target flow validates it again.
	query := url.Values{}
	if next, _ := sc.Context[flowengine.CtxNext].(string); next != "" {
		query.Set("next", next)
	}
	if s.keep {
		key, err := sc.CarryContext(ctx, s.to)
		if err != nil {
			return flowengine.Outcome{}, err
		}
		query.Set(flowengine.CarryParam, key)
	}
	if len(query) > 0 {
		to += "?" + query.Encode()
	}
	sc.Context[flowengine.CtxRedirect] = to
	return flowengine.Continue(), nil
}

// Interactive: a redirect shows no page.
func (*redirect) Interactive([]flowengine.Stage) bool { return false }

// Interface guard: the executor counts steps through Interactive.
var _ flowengine.Interactive = (*redirect)(nil)
