package policies_test

import (
	"context"
	"fmt"

	"github.com/flowgate/flowgate/policies"
)

// Compile once when configuration loads, evaluate per decision.
func ExampleCompile() {
	set, err := policies.Compile(map[string]string{"staff-only": `package flowgate.staff_only
import rego.v1
default allow := false
allow if "staff" in input.user.groups
messages contains "staff only" if not allow`})
	if err != nil {
		panic(err)
	}
	allow, msgs, _ := set.Evaluate(context.Background(), "staff-only",
		map[string]any{"user": map[string]any{"groups": []any{"dev"}}})
	fmt.Println(allow, msgs)

	_, err = policies.Compile(map[string]string{"broken": "package x\nallow if {"})
	fmt.Println(err)
	// Output:
	// false [staff only]
	// policy broken: rego line 2: unexpected eof token
}
