package blueprint

import (
	_ "embed"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsFile is the name the built-in blueprint reports in errors.
const DefaultsFile = "built-in defaults.yaml"

// Defaults returns the built-in default-authentication and default-invalidation
// flows, installed when no blueprint defines any flow.
func Defaults() *Blueprint {
	bp, err := Parse(DefaultsFile, defaultsYAML)
	if err != nil {
		panic("blueprint: built-in defaults do not parse: " + err.Error())
	}
	return bp
}

// DefaultsYAML returns the built-in blueprint's source.
func DefaultsYAML() []byte { return append([]byte(nil), defaultsYAML...) }
