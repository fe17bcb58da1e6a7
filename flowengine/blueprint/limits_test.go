package blueprint_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// onePolicyPerLine is a blueprint of n policies, each one line of broken Rego:
// compiling any of them would fail, so a limit error proves none was compiled.
func onePolicyPerLine(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\npolicies:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "- {name: p%06d, rego: \"package p {\"}\n", i)
	}
	return b.String()
}

func list(n int, format string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

func TestEntryLimits(t *testing.T) {
	flow := func(policies, stages, stagePolicies int) string {
		return "version: 1\nflows:\n  - slug: f\n    policies:\n" + list(policies, "      - {group: g%d}\n") +
			"    stages:\n" + list(stages, "      - {stage: s%d, order: 1}\n") +
			"      - stage: last\n        order: 2\n        policies:\n" + list(stagePolicies, "          - {user: u%d}\n")
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"policies", onePolicyPerLine(blueprint.MaxPolicies + 1), "big.yaml:2: 1001 policies, over the limit of 1000 in one file"},
		{"stages", "version: 1\nstages:\n" + list(blueprint.MaxStages+1, "  - {name: s%d, type: user_login}\n"), "big.yaml:2: 1001 stages, over the limit of 1000"},
		{"flows", "version: 1\nmetadata: {name: x}\nflows:\n" + list(blueprint.MaxFlows+1, "  - {slug: f%d}\n"), "big.yaml:3: 1001 flows, over the limit of 1000"},
		{"users", "version: 1\nusers:\n" + list(blueprint.MaxUsers+1, "  - {username: u%d}\n"), "big.yaml:2: 10001 users, over the limit of 10000"},
		{"flow policy bindings", flow(blueprint.MaxBindings+1, 1, 1), "big.yaml:4: flow f: policies: 101 bindings, over the limit of 100"},
		{"stage bindings", flow(1, blueprint.MaxBindings, 1), "flow f: stages: 101 bindings, over the limit of 100"},
		{"stage policy bindings", flow(1, 1, blueprint.MaxBindings+1), "flow f: stages[1].policies: 101 bindings, over the limit of 100"},
		{"rego size", "version: 1\npolicies:\n  - name: big\n    rego: |\n      package big\n      # " + strings.Repeat("x", blueprint.MaxRegoSize) + "\n",
			"big.yaml:4: policy big: rego is 65551 bytes, over the 65536 byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bp, err := blueprint.Parse("big.yaml", []byte(tc.doc))
			if err == nil {
				err = bp.Apply(context.Background(), newEngine(t))
			}
			if !errors.Is(err, blueprint.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// A file at every limit at once is accepted.
func TestAtEntryLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\npolicies:\n")
	b.WriteString(list(blueprint.MaxPolicies, "  - {name: p%[1]d, rego: \"package p%[1]d\\nallow := input.n == %[1]d\"}\n"))
	b.WriteString("stages:\n" + list(blueprint.MaxStages, "  - {name: s%d, type: user_login}\n"))
	b.WriteString("flows:\n" + list(blueprint.MaxFlows-1, "  - {slug: f%d, designation: enrollment}\n"))
	b.WriteString("  - slug: big\n    designation: enrollment\n    policies:\n" + list(blueprint.MaxBindings, "      - {policy: p%d}\n"))
	b.WriteString("    stages:\n" + list(blueprint.MaxBindings-1, "      - {stage: s%d, order: 1}\n"))
	b.WriteString("      - stage: s999\n        order: 2\n        policies:\n" + list(blueprint.MaxBindings, "          - {user: u%d}\n"))
	b.WriteString("users:\n" + list(blueprint.MaxUsers, "  - {username: u%d}\n"))
	b.WriteString("  # " + strings.Repeat("x", 10) + "\n")
	if b.Len() > blueprint.MaxSize {
		t.Fatalf("test file is %d bytes, over MaxSize", b.Len())
	}
	bp, err := blueprint.Parse("limits.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bp.Config.Policies); n != blueprint.MaxPolicies {
		t.Fatalf("%d policies parsed", n)
	}
	// Applying it compiles every policy: cheap enough to be no weapon.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if err := bp.Apply(context.Background(), newEngine(t)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	const budget = 512 << 20
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > budget {
		t.Fatalf("applying the file at the limits allocated %d MiB, budget %d MiB", alloc>>20, budget>>20)
	}
	t.Logf("applied in %v, allocating %d MiB", took, (after.TotalAlloc-before.TotalAlloc)>>20)
	rego := "package big\n# " + strings.Repeat("x", blueprint.MaxRegoSize-len("package big\n# \n")) + "\n"
	if _, err := blueprint.Parse("rego.yaml", []byte("version: 1\npolicies:\n  - name: big\n    rego: |\n"+indent(rego))); err != nil {
		t.Fatalf("rego of exactly MaxRegoSize: %v", err)
	}
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n      ") + "\n"
}

// The finding: a 4 MiB file of 100 000 one-line policies took 47 s of CPU and
// 7.7 GB. It must now be refused quickly and cheaply.
func TestHugePolicyFileRejectedCheaply(t *testing.T) {
	doc := onePolicyPerLine(100000)
	if len(doc) > blueprint.MaxSize || len(doc) < 3_800_000 {
		t.Fatalf("test file is %d bytes, want just under MaxSize", len(doc))
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := blueprint.Parse("huge.yaml", []byte(doc))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "100000 policies, over the limit of 1000") {
		t.Fatalf("got %v", err)
	}
	const budget = 256 << 20
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > budget {
		t.Fatalf("allocated %d MiB to refuse the file, budget %d MiB", alloc>>20, budget>>20)
	}
	t.Logf("refused in %v, allocating %d MiB", took, (after.TotalAlloc-before.TotalAlloc)>>20)
}
