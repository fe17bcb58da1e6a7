package stages_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/policies"
)

func TestPromptConfig(t *testing.T) {
	field := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	fields := func(fs ...map[string]any) map[string]any {
		l := make([]any, len(fs))
		for i, f := range fs {
			l[i] = f
		}
		return map[string]any{"fields": l}
	}
	checkConfigs(t, "prompt", []configCase{
		{"every type", fields(
			field("field_key", "a", "type", "text", "label", "A", "required", true, "placeholder", "p", "initial_value", "x", "order", 3, "sub_text", "help"),
			field("field_key", "b", "type", "text_area"), field("field_key", "c", "type", "username"),
			field("field_key", "d", "type", "email"), field("field_key", "e", "type", "password"),
			field("field_key", "f", "type", "number"), field("field_key", "g", "type", "checkbox"),
			field("field_key", "h", "type", "dropdown", "choices", []any{"x", map[string]any{"value": "y", "label": "Why"}}),
			field("field_key", "i", "type", "radio_button_group", "choices", []any{"x"}),
			field("field_key", "j", "type", "date"), field("field_key", "k", "type", "hidden"),
			field("field_key", "l", "type", "static")), ""},
		{"with policies", map[string]any{"fields": []any{field("field_key", "a", "type", "text")}, "validation_policies": []any{"p"}}, ""},
		{"no fields", nil, "at least one field"},
		{"unknown type", fields(field("field_key", "a", "type", "file")), `unknown type "file"`},
		{"missing key", fields(field("type", "text")), "field_key is required"},
		{"duplicate key", fields(field("field_key", "a", "type", "text"), field("field_key", "a", "type", "email")), "duplicate field_key"},
		{"dropdown without choices", fields(field("field_key", "a", "type", "dropdown")), "needs choices"},
		{"bad choice", fields(field("field_key", "a", "type", "dropdown", "choices", []any{1})), "choice"},
		{"unknown field key", fields(field("field_key", "a", "type", "text", "is_active", true)), `unknown config key "is_active"`},
		{"unknown config key", map[string]any{"fields": []any{field("field_key", "a", "type", "text")}, "x": 1}, `unknown config key "x"`},
		{"empty policy name", map[string]any{"fields": []any{field("field_key", "a", "type", "text")}, "validation_policies": []any{""}}, "empty"},
	})
}

var promptFields = map[string]any{"fields": []any{
	map[string]any{"field_key": "note", "type": "static", "initial_value": "Welcome", "order": 0},
	map[string]any{"field_key": "username", "type": "username", "label": "Username", "required": true, "order": 1},
	map[string]any{"field_key": "email", "type": "email", "order": 2},
	map[string]any{"field_key": "password", "type": "password", "required": true, "order": 3},
	map[string]any{"field_key": "password_repeat", "type": "password", "required": true, "order": 4},
	map[string]any{"field_key": "age", "type": "number", "order": 5},
	map[string]any{"field_key": "terms", "type": "checkbox", "order": 6},
	map[string]any{"field_key": "color", "type": "dropdown", "choices": []any{"red", "blue"}, "order": 7},
	map[string]any{"field_key": "size", "type": "radio_button_group", "choices": []any{"s", "m"}, "order": 8},
	map[string]any{"field_key": "born", "type": "date", "order": 9},
	map[string]any{"field_key": "source", "type": "hidden", "initial_value": "web", "order": 10},
	map[string]any{"field_key": "bio", "type": "text_area", "order": 11},
}}

func TestPromptChallenge(t *testing.T) {
	e := newStageEnv(t)
	cfg := map[string]any{"fields": []any{
		map[string]any{"field_key": "b", "type": "dropdown", "label": "B", "required": true, "order": 2, "choices": []any{"x"}},
		map[string]any{"field_key": "a", "type": "password", "order": 1, "initial_value": "leak"},
		map[string]any{"field_key": "c", "type": "static", "required": true, "initial_value": "Hi", "order": 3},
	}}
	ch, err := newStage(t, "prompt", cfg).Challenge(context.Background(), e.stageContext(nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Fields) != 3 || ch.Fields[0].Key != "a" || ch.Fields[1].Key != "b" || ch.Fields[2].Key != "c" {
		t.Fatalf("fields %+v, want sorted a, b, c", ch.Fields)
	}
	a, b, c := ch.Fields[0], ch.Fields[1], ch.Fields[2]
	if a.Type != flowengine.FieldPassword || a.Value != "" || a.Autocomplete != "new-password" || a.Label != "a" {
		t.Fatalf("password field %+v", a)
	}
	if b.Type != flowengine.FieldChoice || !b.Required || len(b.Choices) != 1 || b.Choices[0] != (flowengine.Choice{Value: "x", Label: "x"}) {
		t.Fatalf("dropdown field %+v", b)
	}
	if c.Type != flowengine.FieldStatic || c.Required || c.Value != "Hi" {
		t.Fatalf("static field %+v", c)
	}
}

func TestPromptSubmit(t *testing.T) {
	valid := func() flowengine.Answer {
		return flowengine.Answer{"note": "forged", "username": " bob ", "email": "bob@example.com", "password": " pw ", "password_repeat": " pw ",
			"age": "42", "terms": "true", "color": "red", "size": "m", "born": "1990-02-28", "bio": "hi"}
	}
	with := func(k, v string) flowengine.Answer {
		a := valid()
		a[k] = v
		return a
	}
	cases := []struct {
		name    string
		answer  flowengine.Answer
		pending bool
		errKey  string // field with an error; "" for success
	}{
		{"valid", valid(), false, ""},
		{"username taken", with("username", "alice"), false, "username"},
		{"username taken case-insensitively", with("username", "ALICE"), false, "username"},
		{"own username", with("username", "alice"), true, ""},
		{"bad username", with("username", "a/b"), false, "username"},
		{"bad email", with("email", "not an email"), false, "email"},
		{"display-name email", with("email", "Bob <bob@example.com>"), false, "email"},
		{"password mismatch", with("password_repeat", "pw"), false, "password_repeat"},
		{"not a number", with("age", "forty"), false, "age"},
		{"not a choice", with("color", "green"), false, "color"},
		{"not a radio choice", with("size", "xl"), false, "size"},
		{"bad date", with("born", "28.02.1990"), false, "born"},
		{"impossible date", with("born", "1990-02-30"), false, "born"},
		{"required missing", with("password", ""), false, "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newStageEnv(t)
			var pending *flowengine.User
			if tc.pending {
				pending = e.alice
			}
			sc := e.stageContext(map[string]any{"earlier": "kept"}, pending, nil)
			out, err := newStage(t, "prompt", promptFields).Submit(context.Background(), sc, tc.answer)
			if err != nil {
				t.Fatal(err)
			}
			data := sc.Context[flowengine.CtxPromptData].(map[string]any)
			if tc.errKey != "" {
				if out.Kind != flowengine.OutcomeInvalid || len(out.Errors[tc.errKey]) == 0 {
					t.Fatalf("outcome %+v, want an error on %s", out, tc.errKey)
				}
				if len(data) != 1 {
					t.Fatalf("prompt data %v changed by a refused answer", data)
				}
				return
			}
			if out.Kind != flowengine.OutcomeContinue {
				t.Fatalf("outcome %+v, want continue", out)
			}
			want := map[string]any{"earlier": "kept", "username": tc.answer["username"][1 : len(tc.answer["username"])-1], "email": "bob@example.com",
				"password": " pw ", "age": 42.0, "terms": true, "color": "red", "size": "m", "born": "1990-02-28", "source": "web", "bio": "hi"}
			if tc.pending {
				want["username"] = "alice"
			}
			if len(data) != len(want) {
				t.Fatalf("prompt data %v, want %v", data, want)
			}
			for k, v := range want {
				if data[k] != v {
					t.Fatalf("prompt data %s = %#v, want %#v (all: %v)", k, data[k], v, data)
				}
			}
		})
	}
}

func TestPromptOptionalEmpty(t *testing.T) {
	e := newStageEnv(t)
	sc := e.stageContext(nil, nil, nil)
	out, err := newStage(t, "prompt", promptFields).Submit(context.Background(), sc,
		flowengine.Answer{"username": "bob", "password": "pw", "password_repeat": "pw", "email": " ", "age": ""})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	data := sc.Context[flowengine.CtxPromptData].(map[string]any)
	for _, k := range []string{"email", "age", "color", "born", "bio", "password_repeat", "note"} {
		if _, ok := data[k]; ok {
			t.Fatalf("prompt data has %s: %v", k, data)
		}
	}
	if data["terms"] != false || data["source"] != "web" {
		t.Fatalf("prompt data %v", data)
	}
}

// TestPromptPoliciesFailClosed: a stage context without loaded policies cannot
// evaluate validation_policies, and the stage denies rather than passes.
func TestPromptPoliciesFailClosed(t *testing.T) {
	e := newStageEnv(t)
	cfg := map[string]any{"fields": []any{map[string]any{"field_key": "a", "type": "text"}}, "validation_policies": []any{"p"}}
	sc := e.stageContext(nil, nil, nil)
	out, err := newStage(t, "prompt", cfg).Submit(context.Background(), sc, flowengine.Answer{"a": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != flowengine.OutcomeDeny || out.Messages[0] != flowengine.UnavailableMessage {
		t.Fatalf("outcome %+v, want the unavailable denial", out)
	}
	if _, ok := sc.Context[flowengine.CtxPromptData]; ok {
		t.Fatal("prompt data written")
	}
}

// TestPromptUnknownKeys runs the prompt through the engine: an answer with a
// key the stage did not declare (is_active) is refused and nothing changes.
func TestPromptUnknownKeys(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: noPolicies, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse("p.yaml", []byte(`
version: 1
stages:
  - name: ask
    type: prompt
    config: {fields: [{field_key: name, type: text}]}
  - {name: after, type: dummy}
flows:
  - {slug: ask, designation: enrollment, stages: [{stage: ask, order: 1}, {stage: after, order: 2}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Apply(ctx, eng); err != nil {
		t.Fatal(err)
	}
	r := &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Path: "/flows/ask/", Query: url.Values{}, ClientIP: "192.0.2.7"}
	res, err := eng.Start(ctx, "ask", r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Response.Stage.Type != "prompt" || len(res.Response.Fields) != 1 {
		t.Fatalf("start: %+v", res.Response)
	}
	if _, err := eng.Answer(ctx, res.ExecutionID, r, map[string]any{"name": "Bob", "is_active": "true"}); !errors.Is(err, flowengine.ErrInvalidAnswer) {
		t.Fatalf("answer with is_active: %v, want ErrInvalidAnswer", err)
	}
	res, err = eng.Answer(ctx, res.ExecutionID, r, map[string]any{"name": "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Response.Stage.Type != "dummy" {
		t.Fatalf("after answer: %+v", res.Response)
	}
}

// TestPromptKeepsRefusedAnswers: a weak password refused by a validation
// policy brings the prompt back with the user's non-secret answers filled in
// and the password fields empty; the kept answers go once the answer passes.
func TestPromptKeepsRefusedAnswers(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	compile := func(m map[string]string) (flowengine.PolicyEvaluator, error) { return policies.Compile(m) }
	eng, err := flowengine.New(flowengine.Options{Store: e.store, Stages: stages.Types(), Policies: compile, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse("p.yaml", []byte(`
version: 1
policies:
  - name: strength
    rego: |
      package strength
      allow if flowgate.password_strength(input.prompt.password).score >= 3
      messages contains "Choose a stronger password." if flowgate.password_strength(input.prompt.password).score < 3
stages:
  - name: ask
    type: prompt
    config:
      fields:
        - {field_key: username, type: username, required: true, order: 1}
        - {field_key: email, type: email, order: 2}
        - {field_key: password, type: password, required: true, order: 3}
        - {field_key: password_repeat, type: password, required: true, order: 4}
        - {field_key: terms, type: checkbox, order: 5}
        - {field_key: color, type: dropdown, choices: [red, blue], order: 6}
        - {field_key: source, type: hidden, initial_value: web, order: 7}
      validation_policies: [strength]
  - {name: after, type: dummy}
flows:
  - {slug: ask, designation: enrollment, stages: [{stage: ask, order: 1}, {stage: after, order: 2}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Apply(ctx, eng); err != nil {
		t.Fatal(err)
	}
	r := &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Path: "/flows/ask/", Query: url.Values{}, ClientIP: "192.0.2.7"}
	res, err := eng.Start(ctx, "ask", r)
	if err != nil {
		t.Fatal(err)
	}
	values := func(res *flowengine.Result) map[string]string {
		out := map[string]string{}
		for _, f := range res.Response.Fields {
			out[f.Key] = f.Value
		}
		return out
	}
	if v := values(res); v["username"] != "" || v["email"] != "" || v["source"] != "web" {
		t.Fatalf("first challenge values %v", v)
	}
	res, err = eng.Answer(ctx, res.ExecutionID, r, map[string]any{"username": " nina ", "email": "nina@example.com",
		"password": "password", "password_repeat": "password", "terms": true, "color": "blue", "source": "forged"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Response.Stage.Type != "prompt" || len(res.Response.Errors["password"]) == 0 {
		t.Fatalf("weak password: %+v, want the prompt again with an error", res.Response)
	}
	want := map[string]string{"username": "nina", "email": "nina@example.com", "password": "", "password_repeat": "",
		"terms": "true", "color": "blue", "source": "web"}
	check := func(res *flowengine.Result, when string) {
		t.Helper()
		got := values(res)
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: field %s = %q, want %q (all: %v)", when, k, got[k], v, got)
			}
		}
	}
	check(res, "after the refusal")
	// Rendering the page again (the redirect after POST) keeps them.
	res, err = eng.Resume(ctx, res.ExecutionID, r)
	if err != nil {
		t.Fatal(err)
	}
	check(res, "resumed")
	// A second refusal (passwords differ) keeps the new answers, unchecked box included.
	res, err = eng.Answer(ctx, res.ExecutionID, r, map[string]any{"username": "nina2", "email": "nina@example.com",
		"password": "x", "password_repeat": "y", "terms": false, "color": "red"})
	if err != nil {
		t.Fatal(err)
	}
	want["username"], want["terms"], want["color"] = "nina2", "", "red"
	check(res, "after the second refusal")
	const strong = "correct horse battery staple 7!"
	res, err = eng.Answer(ctx, res.ExecutionID, r, map[string]any{"username": "nina2", "password": strong, "password_repeat": strong})
	if err != nil {
		t.Fatal(err)
	}
	if res.Response.Stage.Type != "dummy" {
		t.Fatalf("strong password: %+v, want the next stage", res.Response)
	}
}

// TestPromptForgetsAnswersOnSuccess: the stage's State keeps a refused
// answer's values (never a password) and drops them once an answer passes.
func TestPromptForgetsAnswersOnSuccess(t *testing.T) {
	e := newStageEnv(t)
	st := newStage(t, "prompt", promptFields)
	sc := e.stageContext(nil, nil, nil)
	sc.State = map[string]any{}
	answer := flowengine.Answer{"username": "bob", "email": "bad", "password": "pw", "password_repeat": "pw", "bio": "hi"}
	if out, err := st.Submit(context.Background(), sc, answer); err != nil || out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	ch, err := st.Challenge(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ch.Fields {
		if f.Type == flowengine.FieldPassword && f.Value != "" {
			t.Fatalf("password field %s pre-filled", f.Key)
		}
		if f.Key == "email" && f.Value != "bad" || f.Key == "bio" && f.Value != "hi" {
			t.Fatalf("field %s = %q", f.Key, f.Value)
		}
	}
	answer["email"] = "bob@example.com"
	if out, err := st.Submit(context.Background(), sc, answer); err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if len(sc.State) != 0 {
		t.Fatalf("state %v kept after success", sc.State)
	}
}
