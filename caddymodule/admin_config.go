package caddymodule

import (
	"fmt"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// adminConfig serves GET /flowgate/config: every flow, stage and policy of the
// running gateway (built-in flows included) as one self-contained blueprint,
// ?format=yaml (default) or json. Seed users are not part of it, nor anything
// secret. `caddy flowgate validate --address` checks files merged onto it, as
// an import would merge them.
func adminConfig(w http.ResponseWriter, r *http.Request, app *App) error {
	format := blueprint.Format(r.URL.Query().Get("format"))
	out, err := blueprint.Export(app.engine.Config(), format)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	return writeBlueprint(w, format, out)
}

// writeBlueprint answers an exported blueprint with its content type.
func writeBlueprint(w http.ResponseWriter, format blueprint.Format, out []byte) error {
	if format == blueprint.JSON {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "application/yaml")
	}
	_, err := w.Write(out)
	return err
}

// fileWarnings parses blueprint files for their warnings alone (what an
// authentik blueprint has that flowgate leaves out or cannot run), for the
// commands to print; files that do not parse have none here, their error is
// reported by whatever reads them for real.
func fileWarnings(paths ...string) []blueprint.Warning {
	set, err := blueprint.ReadPaths(paths...)
	if err != nil {
		return nil
	}
	return set.Warnings()
}

// printWarnings writes one line per warning (to stderr, so that convert's
// output stays a clean blueprint).
func printWarnings(w io.Writer, ws []blueprint.Warning) {
	for _, x := range ws {
		fmt.Fprintln(w, x.String())
	}
}

// warningStrings are warnings as the admin API answers them.
func warningStrings(ws []blueprint.Warning) []string {
	out := make([]string, 0, len(ws))
	for _, x := range ws {
		out = append(out, x.String())
	}
	return out
}

// logWarnings logs the warnings of blueprints loaded from the config.
func logWarnings(logger *zap.Logger, ws []blueprint.Warning) {
	for _, x := range ws {
		logger.Warn("blueprint entry not carried over", zap.String("file", x.File), zap.Int("line", x.Line),
			zap.String("entry", x.Entry), zap.String("kind", x.Kind), zap.String("detail", x.Msg))
	}
}
