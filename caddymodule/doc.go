// Package caddymodule plugs flowgate into Caddy: the flowgate app (global options),
// the http.handlers.flowgate handler (per site), the admin API and the
// `caddy flowgate` commands. It is the only package that imports Caddy.
package caddymodule
