// Package authentik converts authentik blueprints and flow exports into
// flowgate's own blueprint format, with a warning for everything it leaves out.
package authentik
