package caddymodule

import (
	"net/http"

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
