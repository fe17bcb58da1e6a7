package flowengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CarryParam is the query parameter that hands a plan context to the flow a
// redirect stage (mode flow, keep_context) sends the user into.
const CarryParam = "fg_ctx"

// CarryTTL bounds how long a carried context waits for its target flow.
const CarryTTL = 10 * time.Minute

// carryPrefix names carried contexts in the execution store; ':' is not in
// an execution ID's alphabet, so a carried context never loads as one.
const carryPrefix = "fgctx:"

// carriedKeys are the plan context keys a redirect carries: what the user
// answered and who the flow acts on, never the plan, the redirect, next (the
// URL carries it) or how the user authenticated.
var carriedKeys = []string{CtxPromptData, CtxPendingUser, CtxPendingUserIdentifier}

type carried struct {
	// Flow is the only flow that may take the context.
	Flow    string         `json:"flow"`
	Context map[string]any `json:"context"`
}

// CarryContext saves the carried keys of the plan context for the flow with
// slug target and returns the single-use key to pass to it as CarryParam:
// 256 random bits, valid for CarryTTL, taken by the first Start of target
// that presents it.
func (sc *StageContext) CarryContext(ctx context.Context, target string) (string, error) {
	c := carried{Flow: target, Context: map[string]any{}}
	for _, k := range carriedKeys {
		if v, ok := sc.Context[k]; ok {
			c.Context[k] = v
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding carried context: %w", err)
	}
	key := randomID()
	if err := sc.Store.PutExecution(ctx, carryPrefix+key, raw, CarryTTL); err != nil {
		return "", fmt.Errorf("saving carried context: %w", err)
	}
	return key, nil
}

// takeCarried loads and deletes the context carried to the flow slug under
// key, and seeds exec's context with it. A key that is unknown, expired,
// already taken or meant for another flow seeds nothing.
//
// The rule that keeps a context with its user: a carried pending_user is
// the user flow A acted on. If this request has a session for another user,
// the whole context belongs to someone else and is dropped (the new flow
// acts on the session user, as without keep_context). Without a session, or
// with the same user's, the context is seeded as it was; the key alone is
// the bearer of it, which is why it is unguessable, single use and short
// lived, and travels only in the redirect to the browser that ran flow A.
// next from the URL was set before and is never overwritten.
func (e *Engine) takeCarried(ctx context.Context, slug, key string, exec *execution, req *Request) error {
	if len(key) != 43 || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return nil
	}
	id := carryPrefix + key
	// Single use even when two requests present the key at once: only the
	// first to count it may read it.
	n, err := e.opts.Store.IncrCounter(ctx, carryPrefix+"taken:"+key, CarryTTL)
	if err != nil {
		return fmt.Errorf("taking carried context: %w", err)
	}
	if n > 1 {
		return nil
	}
	raw, err := e.opts.Store.GetExecution(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading carried context: %w", err)
	}
	if err := e.opts.Store.DeleteExecution(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("deleting carried context: %w", err)
	}
	var c carried
	if err := json.Unmarshal(raw, &c); err != nil || c.Flow != slug {
		return nil
	}
	pending, _ := c.Context[CtxPendingUser].(string)
	if req.User != nil && pending != "" && pending != req.User.ID {
		return nil
	}
	for _, k := range carriedKeys {
		if v, ok := c.Context[k]; ok && v != nil {
			exec.Context[k] = v
		}
	}
	return nil
}
