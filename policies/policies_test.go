package policies_test

import (
	"context"
	"errors"
	"strings"
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
		// Same package as "staff": policies are compiled apart, so this is fine.
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
