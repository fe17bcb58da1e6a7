package authentik_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// FuzzImport feeds authentik-shaped input through the importer: it may
// refuse it, always as a located blueprint error, and must never panic.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	shared, _ := filepath.Glob("testdata/shared/*.yaml")
	for _, name := range append(files, shared...) {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\nentries:\n  - {model: authentik_flows.flow, identifiers: {slug: !Format [\"%s%d\", a, 1]}}\n"))
	f.Add([]byte("version: 1\ncontext: {a: !Context a}\nentries: {x: [{model: x.y, attrs: {k: !If [!Condition [XOR, 1, 0], !Env HOME, !AtIndex [[1], 3, d]]}}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := blueprint.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, blueprint.ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			return
		}
		if _, err := blueprint.Convert("fuzz.yaml", data, blueprint.YAML); err != nil {
			t.Fatalf("parses but does not convert: %v", err)
		}
	})
}
