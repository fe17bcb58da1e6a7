package blueprint_test

import (
	"context"
	"fmt"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// Parse, apply and export: a rejected file names the file, line and entry.
func ExampleParse() {
	e := newEngine(nil)
	bp, _ := blueprint.Parse("flows.yaml", []byte(`version: 1
stages:
  - {name: hello, type: dummy}
flows:
  - {slug: welcome, title: Welcome, designation: enrollment, stages: [{stage: hello, order: 10}]}
`))
	fmt.Println(bp.Apply(context.Background(), e))
	out, _ := blueprint.Export(e.Config(), blueprint.YAML, "welcome")
	fmt.Print(string(out))

	_, err := blueprint.Parse("bad.yaml", []byte("version: 1\nflows:\n  - {slug: x, designation: signin}\n"))
	fmt.Println(err == nil)
	bad, _ := blueprint.Parse("bad.yaml", []byte("version: 1\nflows:\n  - {slug: x, designation: signin}\n"))
	fmt.Println(bad.Apply(context.Background(), e))
	// Output:
	// <nil>
	// version: 1
	// metadata:
	//   name: welcome
	// stages:
	//   - name: hello
	//     type: dummy
	// flows:
	//   - slug: welcome
	//     title: Welcome
	//     designation: enrollment
	//     stages:
	//       - stage: hello
	//         order: 10
	// true
	// bad.yaml:3: flow x: designation: unknown value "signin" (want one of authentication, invalidation, enrollment, unenrollment, recovery, stage_configuration)
}
