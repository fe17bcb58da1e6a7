package caddymodule

import (
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

// The prompt stage's field types reach the page as the controls that show
// them: a radio_button_group as a radio group, its help text kept.
func TestStagePageFieldTypes(t *testing.T) {
	h := &Handler{app: &App{Branding: &Branding{}}, Prefix: "/.flowgate"}
	choices := []flowengine.Choice{{Value: "a", Label: "A"}}
	res := &flowengine.Result{Response: flowengine.Response{
		Flow: flowengine.FlowInfo{Slug: "enroll"},
		Fields: []flowengine.Field{
			{Key: "n", Type: flowengine.FieldNumber},
			{Key: "d", Type: flowengine.FieldDate},
			{Key: "s", Type: flowengine.FieldStatic, Value: "Read this"},
			{Key: "t", Type: flowengine.FieldTextArea, SubText: "help"},
			{Key: "c", Type: flowengine.FieldChoice, Choices: choices},
			{Key: "r", Type: flowengine.FieldChoice, Choices: choices, Presentation: flowengine.PresentationRadio},
		},
	}}
	want := map[string]string{"n": "number", "d": "date", "s": "static", "t": "textarea", "c": "choice", "r": "radio"}
	p := h.stagePage(res)
	if len(p.Fields) != len(want) {
		t.Fatalf("got %d fields", len(p.Fields))
	}
	for _, f := range p.Fields {
		if f.Type != want[f.Key] {
			t.Errorf("field %s: type %q, want %q", f.Key, f.Type, want[f.Key])
		}
	}
	if p.Fields[3].SubText != "help" || p.Fields[2].Value != "Read this" || len(p.Fields[5].Choices) != 1 {
		t.Errorf("fields lost their sub text, value or choices: %+v", p.Fields)
	}
}
