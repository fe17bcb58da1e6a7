package policies_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/policies"
)

func TestEvaluate(t *testing.T) {
	set, err := policies.Compile(map[string]string{
		"staff": `package a
import rego.v1
default allow := false
allow if "staff" in input.user.groups
messages contains "staff only" if not allow
messages contains "ask an admin" if not allow`,
		// Same package as "staff": policies behave as if compiled apart, so this is fine.
		"same-package": "package a\nimport rego.v1\nallow := true",
		"not-bool":     "package b\nimport rego.v1\nallow := \"yes\"",
		"msg-array":    "package c\nimport rego.v1\nmessages := [\"one\", \"two\"]",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	staff := map[string]any{"user": map[string]any{"groups": []any{"staff"}}}
	other := map[string]any{"user": map[string]any{"groups": []any{}}}
	if ok, msgs, err := set.Evaluate(ctx, "staff", staff); !ok || len(msgs) != 0 || err != nil {
		t.Fatalf("staff: %v %v %v", ok, msgs, err)
	}
	ok, msgs, err := set.Evaluate(ctx, "staff", other)
	if ok || err != nil || strings.Join(msgs, "|") != "ask an admin|staff only" {
		t.Fatalf("other: %v %v %v", ok, msgs, err)
	}
	if ok, _, _ := set.Evaluate(ctx, "same-package", other); !ok {
		t.Fatal("policies sharing a package interfered")
	}
	if _, _, err := set.Evaluate(ctx, "not-bool", other); err == nil {
		t.Fatal("non-boolean allow accepted")
	}
	if ok, msgs, err := set.Evaluate(ctx, "msg-array", other); ok || len(msgs) != 2 || err != nil {
		t.Fatalf("undefined allow with message array: %v %v %v", ok, msgs, err)
	}
	if _, _, err := set.Evaluate(ctx, "ghost", other); !errors.Is(err, policies.ErrUnknownPolicy) {
		t.Fatalf("unknown policy: %v", err)
	}
}

func TestCompileErrorsNameLine(t *testing.T) {
	_, err := policies.Compile(map[string]string{
		"broken":  "package x\nimport rego.v1\n\nallow if {\n  input.a ==\n}\n",
		"unsafe":  "package y\nimport rego.v1\nallow if x > 1\n",
		"empty":   "  ",
		"v0-only": "package z\nallow { true }\n",
	})
	if err == nil {
		t.Fatal("compiled")
	}
	for _, want := range []string{"policy broken: rego line 6:", "policy unsafe: rego line 3:", "policy empty: rego is empty", "policy v0-only: rego line 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDeadline(t *testing.T) {
	set, err := policies.Compile(map[string]string{"slow": "package s\nimport rego.v1\nallow if {\n some i in numbers.range(1, 100000000)\n i < 0\n}"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := set.Evaluate(ctx, "slow", map[string]any{}); err == nil {
		t.Fatal("slow policy finished inside the deadline")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("deadline not honoured")
	}
}

func BenchmarkEvaluate(b *testing.B) {
	set, err := policies.Compile(map[string]string{"staff": `package flowgate.staff
import rego.v1
default allow := false
allow if "staff" in input.user.groups
messages contains "staff only" if not allow`})
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]any{
		"user":    map[string]any{"username": "alice", "groups": []any{"staff", "dev"}, "authenticated": true, "attributes": map[string]any{}},
		"request": map[string]any{"method": "GET", "path": "/x", "host": "app.example.com", "client_ip": "192.0.2.1", "headers": map[string]any{"user-agent": "bench"}},
		"flow":    map[string]any{"slug": "default-authentication", "designation": "authentication"},
		"context": map[string]any{},
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, _, err := set.Evaluate(ctx, "staff", in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// Policies share compilers where they can; none may see another's rules.
func TestPoliciesStayApart(t *testing.T) {
	set, err := policies.Compile(map[string]string{
		"one": "package shared\nallow := input.n == 1\nmessages contains \"from one\" if not allow",
		"two": "package shared\nallow := input.n == 2\nmessages contains \"from two\" if not allow",
		// data.parent would hold parent.child's rules if both shared a
		// compiler, and child's built-in error would break parent.
		"parent": "package parent\nallow := true",
		"child":  "package parent.child\nboom := 1 / input.zero",
		// Alone, data.other is undefined: reading it must not see "other".
		"reader": "package reader\nallow if data.other.allow",
		"other":  "package other\nallow := true",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, policy string
		n            int
		allow        bool
		msgs         string
	}{
		{"one allows 1", "one", 1, true, ""},
		{"one denies 2", "one", 2, false, "from one"},
		{"two allows 2", "two", 2, true, ""},
		{"two denies 1", "two", 1, false, "from two"},
		{"parent ignores child", "parent", 0, true, ""},
		{"reader sees no other policy", "reader", 0, false, ""},
		{"other", "other", 0, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msgs, err := set.Evaluate(ctx, tc.policy, map[string]any{"n": tc.n, "zero": 0})
			if err != nil || ok != tc.allow || strings.Join(msgs, "|") != tc.msgs {
				t.Fatalf("got %v %q %v, want %v %q", ok, msgs, err, tc.allow, tc.msgs)
			}
		})
	}
	if _, _, err := set.Evaluate(ctx, "child", map[string]any{"zero": 0}); err == nil {
		t.Fatal("child's division by zero was not an error")
	}
}

// Errors are those of each policy compiled alone: none blamed on a neighbour,
// none hidden by one.
func TestCompileErrorsStayApart(t *testing.T) {
	mods := map[string]string{
		"broken": "package broken\nallow if {\n  x := 1\n  x == \"a\"\n  y\n}",
		// Grouped with "lib" this would compile; alone the function is undefined.
		"caller": "package caller\nallow if data.lib.f(1)",
		"lib":    "package lib\nf(x) := x",
		"huge":   "package huge\n" + strings.Repeat("#", policies.MaxModuleSize),
	}
	for i := 0; i < 50; i++ {
		mods[fmt.Sprintf("fine-%02d", i)] = fmt.Sprintf("package fine%d\nallow := input.n == %d", i, i)
	}
	_, err := policies.Compile(mods)
	if err == nil {
		t.Fatal("compiled")
	}
	var names []string
	for _, e := range unjoin(err) {
		var ce *policies.CompileError
		if !errors.As(e, &ce) {
			t.Fatalf("not a *CompileError: %v", e)
		}
		names = append(names, ce.Policy)
	}
	if got := strings.Join(names, " "); got != "broken caller huge" {
		t.Errorf("errors name %q, want broken caller huge:\n%v", got, err)
	}
	for _, want := range []string{"policy broken: rego line 5: var y is unsafe", "policy caller: rego line 2: undefined function data.lib.f", "policy huge: rego is 65549 bytes, over the 65536 byte limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// Policies sharing a compiler are evaluated concurrently, as requests do.
func TestConcurrentEvaluate(t *testing.T) {
	mods := map[string]string{}
	for i := 0; i < 8; i++ {
		mods[fmt.Sprintf("p%d", i)] = fmt.Sprintf("package p%d\nallow := input.n == %d", i, i)
	}
	set, err := policies.Compile(mods)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				ok, _, err := set.Evaluate(context.Background(), fmt.Sprintf("p%d", i), map[string]any{"n": i})
				if !ok || err != nil {
					t.Errorf("p%d: %v %v", i, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
