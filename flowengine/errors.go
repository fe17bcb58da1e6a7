package flowengine

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on. They are wrapped with context; test with errors.Is.
var (
	// ErrNotFound: no such user, session, flow, stage, execution or counter.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique username or email is already taken.
	ErrConflict = errors.New("already exists")
	// ErrExpired: the flow execution timed out or never existed.
	ErrExpired = errors.New("flow execution expired or unknown")
	// ErrBusy: another request is being processed on this flow execution; the
	// client should wait for it (HTTP 409). Nothing was changed.
	ErrBusy = errors.New("flow execution busy")
	// ErrNoFlow: no flow of a designation applies to this request.
	ErrNoFlow = errors.New("no applicable flow")
	// ErrInvalidAnswer: an answer does not fit the current challenge (unknown or
	// missing keys, wrong types). Nothing was changed.
	ErrInvalidAnswer = errors.New("invalid answer")
	// ErrInvalidConfig: flows, stages or policies do not validate. Nothing was applied.
	ErrInvalidConfig = errors.New("invalid flow configuration")
	// ErrStale: the stored flow configuration changed since it was read (another
	// replica applied one); read it again and retry. Nothing was changed.
	ErrStale = errors.New("flow configuration changed meanwhile")
	// ErrChanged: the stored user changed since it was read (UpdateUserIf); read
	// it again, or give up a best-effort write. Nothing was changed.
	ErrChanged = errors.New("user changed meanwhile")
	// ErrPolicyFailed: a policy errored or timed out where its binding did not
	// choose a failure_result; the request is denied generically, never let through.
	ErrPolicyFailed = errors.New("policy evaluation failed")
	// ErrUnavailable: the store cannot be reached. Callers must fail closed.
	ErrUnavailable = errors.New("store unavailable")
	// ErrOverloaded: too many passwords are being hashed; the attempt was not
	// heard (nothing counted, nothing changed) and may be sent again shortly
	// (HTTP 429).
	ErrOverloaded = errors.New("password hashing busy")
)

// ValidationError names the configuration entry that failed to validate, so that a
// blueprint loader can point at the file and line that defined it.
type ValidationError struct {
	Kind  string // "flow", "stage", "policy" or "user"
	Name  string // slug or name of the entry
	Field string // optional: the field within the entry
	Err   error
}

func (e *ValidationError) Error() string {
	where := e.Kind + " " + e.Name
	if e.Field != "" {
		where += ": " + e.Field
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Is makes every ValidationError match ErrInvalidConfig.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidConfig }
