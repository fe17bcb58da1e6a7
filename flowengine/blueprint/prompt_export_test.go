package blueprint_test

import (
	"strings"
	"testing"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// promptDoc has a prompt stage whose validation_policies name a policy that
// no flow binds.
const promptDoc = `version: 1
policies:
  - name: staff-only
    rego: |
      package flowgate.staff_only
      import rego.v1
      default allow := false
      allow if "staff" in input.user.groups
  - name: age-check
    rego: |
      package flowgate.age_check
      import rego.v1
      default allow := true
  - name: unrelated
    rego: |
      package flowgate.unrelated
      import rego.v1
      default allow := true
stages:
  - name: ask
    type: prompt
    config:
      fields:
        - {field_key: age, type: number, label: Age}
      validation_policies: [age-check]
  - name: login
    type: user_login
flows:
  - slug: enroll
    name: Enroll
    designation: enrollment
    stages:
      - {stage: ask, order: 10}
      - {stage: login, order: 20}
  - slug: other
    name: Other
    designation: authentication
    stages:
      - {stage: login, order: 10, policies: [{policy: staff-only}]}
`

// A one-flow export carries the policies its stages evaluate themselves, imports
// on its own, and round-trips byte for byte.
func TestExportIncludesValidationPolicies(t *testing.T) {
	e := newEngine(t)
	mustApply(t, e, promptDoc)
	for _, format := range []blueprint.Format{blueprint.YAML, blueprint.JSON} {
		out, err := blueprint.Export(e.Config(), format, "enroll")
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if !strings.Contains(s, "flowgate.age_check") {
			t.Fatalf("%s export lacks the validation policy:\n%s", format, s)
		}
		if strings.Contains(s, "staff_only") || strings.Contains(s, "flowgate.unrelated") {
			t.Fatalf("%s export carries policies the flow does not use:\n%s", format, s)
		}
		e2 := newEngine(t)
		bp, err := blueprint.Parse("export."+string(format), out)
		if err != nil {
			t.Fatal(err)
		}
		if err := bp.Apply(t.Context(), e2); err != nil {
			t.Fatalf("%s export does not import on its own: %v", format, err)
		}
		again, err := blueprint.Export(e2.Config(), format, "enroll")
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != s {
			t.Fatalf("import(export(x)) exports differently:\n%s\n---\n%s", s, again)
		}
	}
}

// Removing a policy a stage still names in validation_policies is refused,
// naming the absent entry and the stage, even when no flow binds the stage.
func TestAbsentPolicyInValidationPoliciesRejected(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"stage in a flow", "version: 1\npolicies:\n  - {name: age-check, state: absent}\n",
			"bad.yaml:3: policy age-check: state: absent, but stage ask (validation_policies) still uses it"},
		{"flow removed, stage kept", "version: 1\nflows:\n  - {slug: enroll, state: absent}\npolicies:\n  - {name: age-check, state: absent}\n",
			"bad.yaml:5: policy age-check: state: absent, but stage ask (validation_policies) still uses it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			mustApply(t, e, promptDoc)
			err := apply(e, tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
			if n := len(e.Config().Policies); n != 3 {
				t.Fatalf("part of the rejected file was applied: %d policies", n)
			}
		})
	}
	// With the stage removed too, the policy may go.
	e := newEngine(t)
	mustApply(t, e, promptDoc)
	mustApply(t, e, "version: 1\nflows:\n  - {slug: enroll, state: absent}\nstages:\n  - {name: ask, state: absent}\npolicies:\n  - {name: age-check, state: absent}\n")
	if n := len(e.Config().Policies); n != 2 {
		t.Fatalf("policy not removed: %d policies", n)
	}
}
