package stages_test

import (
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
)

// configCase is one stage config and the error it must give ("" for none).
type configCase struct {
	name   string
	config map[string]any
	err    string
}

func checkConfigs(t *testing.T, stageType string, cases []configCase) {
	t.Helper()
	factory, ok := stages.Types()[stageType]
	if !ok {
		t.Fatalf("stage type %s not registered", stageType)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := factory(flowengine.StageDef{Name: "s", Type: stageType, Config: tc.config})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}
