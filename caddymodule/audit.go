package caddymodule

import (
	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine"
)

// Audit events, one structured entry each from the logger flowgate.audit, so
// operators route them with Caddy's own log options, e.g.
//
//	log audit {
//	    include flowgate.audit
//	    output file /var/log/caddy/flowgate-audit.log
//	}
//
// An entry names the event, the user, the client IP, the flow, the stage and
// the result; never a password, code, token or session ID.
const (
	auditLoginSucceeded       = "login_succeeded"
	auditLoginFailed          = "login_failed"
	auditLoginBusy            = "login_busy"
	auditLocked               = "locked"
	auditLockout              = "lockout"
	auditUnlocked             = "unlocked"
	auditLogout               = "logout"
	auditSessionRevoked       = "session_revoked"
	auditPasswordChanged      = "password_changed"
	auditUserCreated          = "user_created"
	auditUserDeleted          = "user_deleted"
	auditUserChanged          = "user_changed" // with the changed field names, never their values
	auditAuthorizationDenied  = "authorization_denied"
	auditConfigImported       = "config_imported"
	auditFlowDeleted          = "flow_deleted"
	auditPolicyFailed         = "policy_failed"
	auditExecutionUnavailable = "flow_unavailable"
	auditInviteCreated        = "invite_created"
	auditInviteRevoked        = "invite_revoked"
	auditDeviceRemoved        = "device_removed" // an MFA device, by the user or an operator
)

// observer turns the engine's events into metrics and audit entries.
type observer struct {
	audit *zap.Logger
}

// Observe implements flowengine.Observer.
func (o *observer) Observe(ev flowengine.Event) {
	switch ev.Kind {
	case flowengine.EventLoginAttempt:
		switch ev.Result {
		case "failure":
			metrics.logins.WithLabelValues("failure").Inc()
			o.event(auditLoginFailed, ev)
		case "locked":
			metrics.logins.WithLabelValues("locked").Inc()
			o.event(auditLocked, ev)
		case "busy":
			metrics.logins.WithLabelValues("busy").Inc()
			o.event(auditLoginBusy, ev)
		}
	case flowengine.EventLoginSucceeded:
		metrics.logins.WithLabelValues("success").Inc()
		o.event(auditLoginSucceeded, ev)
	case flowengine.EventLockout:
		metrics.lockouts.WithLabelValues(ev.Result).Inc()
		o.event(auditLockout, ev, zap.Duration("lock", ev.Duration))
	case flowengine.EventLogout:
		o.event(auditLogout, ev)
	case flowengine.EventPolicy:
		metrics.policies.WithLabelValues(policyLabel(ev.Policy), ev.Result).Inc()
		if ev.Result == "error" {
			o.event(auditPolicyFailed, ev, zap.String("binding", policyLabel(ev.Policy)))
		}
	case flowengine.EventStage:
		metrics.stageDuration.WithLabelValues(ev.Flow, ev.Stage).Observe(ev.Duration.Seconds())
	case flowengine.EventExecution:
		metrics.executions.WithLabelValues(ev.Flow, ev.Result).Inc()
		if ev.Result == "unavailable" {
			o.event(auditExecutionUnavailable, ev)
		}
	}
}

// event writes one audit entry for an engine event.
func (o *observer) event(name string, ev flowengine.Event, extra ...zap.Field) {
	if o.audit == nil {
		return
	}
	fields := make([]zap.Field, 0, 7+len(extra))
	fields = append(fields, zap.String("event", name))
	if ev.Username != "" {
		fields = append(fields, zap.String("user", ev.Username))
	}
	if ev.UserID != "" {
		fields = append(fields, zap.String("user_id", ev.UserID))
	}
	if ev.ClientIP != "" {
		fields = append(fields, zap.String("client_ip", ev.ClientIP))
	}
	if ev.Flow != "" {
		fields = append(fields, zap.String("flow", ev.Flow))
	}
	if ev.Stage != "" {
		fields = append(fields, zap.String("stage", ev.Stage))
	}
	if ev.Result != "" {
		fields = append(fields, zap.String("result", ev.Result))
	}
	o.audit.Info(name, append(fields, extra...)...)
}

// audit writes an audit entry the gateway itself decides on (a request, an
// operator's action through the admin API or the CLI, a config load).
func (a *App) audit(name string, fields ...zap.Field) {
	if a.observer == nil || a.observer.audit == nil {
		return
	}
	a.observer.audit.Info(name, append([]zap.Field{zap.String("event", name)}, fields...)...)
}

// viaAdmin marks an operator's action through the admin API (the CLI uses it).
var viaAdmin = zap.String("via", "admin_api")
