// Package blueprint reads and writes flowgate blueprints: YAML (or JSON of the
// same shape) documents of policies, stages, flows and seed users, imported as an
// all-or-nothing upsert by name and exported deterministically.
package blueprint
