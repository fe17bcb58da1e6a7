package flowengine

import (
	"context"
	"time"
)

// linkToken records that an execution's current handle was mailed as a link
// (email stage): which stage, at which plan position, valid from when until when.
type linkToken struct {
	Stage    string    `json:"stage"`
	Position int       `json:"position"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
}

// ResumeToken continues an execution from a mailed link: token is the handle
// the email stage put in the link. No cookie is needed, so the link works in any
// browser. The token must be the link of the execution's current stage and
// within its expiry, else ErrExpired; it is single use: the execution moves to a
// new ID and secret, and the stage sees CtxIsRestored.
func (e *Engine) ResumeToken(ctx context.Context, token string, req *Request) (*Result, error) {
	return e.step(ctx, token, req, nil, true)
}

// redeemLink checks that the handle just loaded is a valid mailed link and
// spends it.
func (x *execution) redeemLink(now time.Time) error {
	t := x.Link
	if t == nil || t.Position != x.Current || x.Current >= len(x.Plan) || x.Plan[x.Current].Stage != t.Stage ||
		now.Before(t.Issued) || !now.Before(t.Expires) {
		return ErrExpired
	}
	x.Link = nil
	x.Context[CtxIsRestored] = true
	x.rotate = true
	return nil
}

// LinkToken gives the execution a new ID and secret now and returns its handle,
// to be mailed as a link that resumes the flow at this stage through
// Engine.ResumeToken until expiry. The browser running the flow gets the new
// handle with this response. A new link replaces any earlier one.
func (sc *StageContext) LinkToken(expiry time.Duration) string {
	x := sc.exec
	x.rotateNow()
	now := sc.Clock.Now()
	x.Link = &linkToken{Stage: sc.StageName, Position: x.Current, Issued: now, Expires: now.Add(expiry)}
	return x.handle()
}

// DropLinkToken forgets the link LinkToken made (its mail could not be sent).
func (sc *StageContext) DropLinkToken() { sc.exec.Link = nil }

// Restored reports whether this request came from a mailed link (ResumeToken).
func (sc *StageContext) Restored() bool {
	v, _ := sc.Context[CtxIsRestored].(bool)
	return v
}
