package flowengine

import "time"

// Observer hears what the engine decides, for metrics and the audit log. Observe
// runs on the request's goroutine: it must be cheap and must not block. An Event
// never carries a password, code, token or session ID.
type Observer interface {
	Observe(Event)
}

// EventKind names what happened; every value in one place.
type EventKind string

// Event kinds.
const (
	// A password was accepted and the flow went on (Result "success"), or not:
	// "failure" (wrong password or unknown user), "locked" (refused by
	// brute-force regulation), "busy" (refused unheard: too many hashes in flight).
	EventLoginAttempt EventKind = "login_attempt"
	// A user_login stage created a session.
	EventLoginSucceeded EventKind = "login_succeeded"
	// Brute-force regulation locked an account or a client IP (Result "user" or "ip").
	EventLockout EventKind = "lockout"
	// A user_logout stage ended a session.
	EventLogout EventKind = "logout"
	// A policy binding was evaluated: Result "pass", "fail" or "error".
	EventPolicy EventKind = "policy_evaluated"
	// A stage finished its turn (Duration is how long Submit took).
	EventStage EventKind = "stage_completed"
	// An execution ended: Result "completed", "denied" or "unavailable".
	EventExecution EventKind = "execution_ended"
)

// Event is one thing the engine did. Fields that do not apply are empty.
type Event struct {
	Kind     EventKind
	Flow     string
	Stage    string
	Policy   string // policy name, or "group x" / "user x" for other bindings
	UserID   string
	Username string // what the user is known as, or what they typed when unknown
	ClientIP string
	Result   string
	Duration time.Duration
}

// noObserver is used when Options.Observer is nil.
type noObserver struct{}

func (noObserver) Observe(Event) {}
