package policies_test

import (
	"fmt"
	"testing"

	"github.com/flowgate/flowgate/policies"
)

// manyPolicies generates n one-line policies; with samePackage they all declare
// one package, the worst case for sharing a compiler.
func manyPolicies(n int, samePackage bool) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		pkg := fmt.Sprintf("p%d", i)
		if samePackage {
			pkg = "p"
		}
		m[fmt.Sprintf("policy-%d", i)] = fmt.Sprintf("package %s\nallow := input.n == %d", pkg, i)
	}
	return m
}

func BenchmarkCompileMany(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, same := range []bool{false, true} {
			name := fmt.Sprintf("n=%d/distinct", n)
			if same {
				name = fmt.Sprintf("n=%d/same-package", n)
			}
			mods := manyPolicies(n, same)
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := policies.Compile(mods); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
