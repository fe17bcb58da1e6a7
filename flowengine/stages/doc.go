// Package stages implements flowgate's stage types, one file per type; Types
// returns them all for flowengine.Options.Stages.
package stages
