package caddymodule

import (
	"context"
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/flowengine"
)

// Metrics live in Caddy's own Prometheus registry (admin /metrics). The
// collectors are process-wide so counts survive config reloads; each load
// registers them in its new registry. Labels carry flow, stage and policy names
// from the configuration and fixed words, never usernames or IPs.
var metrics = struct {
	executions    *prometheus.CounterVec
	stageDuration *prometheus.HistogramVec
	logins        *prometheus.CounterVec
	lockouts      *prometheus.CounterVec
	policies      *prometheus.CounterVec
	protect       *prometheus.CounterVec
	// Resolved once: the proxied path only adds to an atomic.
	allow, login, deny, unavailable prometheus.Counter
}{
	executions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowgate_flow_executions_total",
		Help: "Flow executions that ended, by flow and result (completed, denied, unavailable).",
	}, []string{"flow", "result"}),
	stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowgate_stage_duration_seconds",
		Help:    "Time a stage took to handle an answer, by flow and stage.",
		Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5},
	}, []string{"flow", "stage"}),
	logins: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowgate_logins_total",
		Help: "Sign-in attempts by result: success (a session was created), failure, locked, busy.",
	}, []string{"result"}),
	lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowgate_lockouts_total",
		Help: "Locks set by brute-force regulation, by kind (user, ip).",
	}, []string{"kind"}),
	policies: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowgate_policy_evaluations_total",
		Help: "Policy binding evaluations by policy (group bindings as group:<name>, user bindings as user) and result (pass, fail, error).",
	}, []string{"policy", "result"}),
	protect: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowgate_protect_decisions_total",
		Help: "Decisions on requests to protected routes: allow, login, deny, unavailable.",
	}, []string{"decision"}),
}

func init() {
	metrics.allow = metrics.protect.WithLabelValues("allow")
	metrics.login = metrics.protect.WithLabelValues("login")
	metrics.deny = metrics.protect.WithLabelValues("deny")
	metrics.unavailable = metrics.protect.WithLabelValues("unavailable")
}

// SessionCounter is what a store offers to count its live sessions cheaply.
type SessionCounter interface {
	CountSessions(ctx context.Context) (int64, error)
}

// registerMetrics adds flowgate's collectors to this config's registry, and a
// sessions gauge for the app's store when the store can count them.
func (a *App) registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	collectors := []prometheus.Collector{metrics.executions, metrics.stageDuration, metrics.logins,
		metrics.lockouts, metrics.policies, metrics.protect}
	collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowgate_password_hash_queue",
		Help: "Password attempts waiting for a hashing slot (password_hashing queue).",
	}, func() float64 { return float64(a.hashes.Queued()) })) // read at scrape: set after registration
	if counter, ok := a.raw.(SessionCounter); ok {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "flowgate_sessions_active",
			Help:        "Sessions in the store (expired ones count until swept).",
			ConstLabels: prometheus.Labels{"store": a.backend()},
		}, func() float64 {
			n, err := counter.CountSessions(context.Background())
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return err
			}
		}
	}
	return nil
}

// policyLabel keeps usernames out of labels: a user binding counts as "user".
func policyLabel(binding string) string {
	switch {
	case strings.HasPrefix(binding, "policy "):
		return strings.TrimPrefix(binding, "policy ")
	case strings.HasPrefix(binding, "group "):
		return "group:" + strings.TrimPrefix(binding, "group ")
	}
	return "user"
}

var _ flowengine.Observer = (*observer)(nil)
