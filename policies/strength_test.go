package policies_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/policies"
)

const strongPolicy = `package flowgate.strong
import rego.v1
default allow := false
allow if flowgate.password_strength(input.prompt.password).score >= 3
messages contains "Choose a stronger password." if not allow
`

// reportPolicy exposes the whole result, to check its shape from Rego.
const reportPolicy = `package flowgate.report
import rego.v1
result := flowgate.password_strength(input.prompt.password)
allow if result.score >= 3
messages contains result.warning if result.warning != ""
messages contains s if some s in result.suggestions
`

func prompt(pw any) map[string]any {
	return map[string]any{"prompt": map[string]any{"password": pw}}
}

func TestPasswordStrengthPolicy(t *testing.T) {
	// Different packages, no outside reads: the two share one compiler.
	set, err := policies.Compile(map[string]string{"strong": strongPolicy, "report": reportPolicy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, pw string
		strong   bool
	}{
		{"common word", "password", false},
		{"digits", "123456", false},
		{"keyboard row", "qwertyuiop", false},
		{"empty", "", false},
		{"passphrase", "correct horse battery staple 9!x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msgs, err := set.Evaluate(ctx, "strong", prompt(tc.pw))
			if err != nil || ok != tc.strong {
				t.Fatalf("strong: allow=%v msgs=%v err=%v, want allow=%v", ok, msgs, err, tc.strong)
			}
			if !tc.strong && strings.Join(msgs, "") != "Choose a stronger password." {
				t.Fatalf("strong: messages %q", msgs)
			}
			ok, msgs, err = set.Evaluate(ctx, "report", prompt(tc.pw))
			if err != nil || ok != tc.strong {
				t.Fatalf("report: allow=%v msgs=%v err=%v, want allow=%v", ok, msgs, err, tc.strong)
			}
			if tc.strong != (len(msgs) == 0) { // feedback exactly for weak passwords
				t.Fatalf("report: feedback %q for strong=%v", msgs, tc.strong)
			}
		})
	}
}

func TestPasswordStrengthFeedback(t *testing.T) {
	for _, tc := range []struct{ pw, warning string }{
		{"password", "This is a top-10 common password."},
		{"123456", "This is a top-10 common password."},
		{"qwertyuiop", "This is a top-100 common password."},
		{"2345678", "Sequences like abc or 6543 are easy to guess."},
		{"aaaaaaaaa", `Repeats like "aaa" are easy to guess.`},
	} {
		score, warning, sugg := policies.PasswordStrength(tc.pw)
		if score >= 3 || warning != tc.warning || len(sugg) == 0 {
			t.Errorf("%q: score %d warning %q suggestions %q; want warning %q", tc.pw, score, warning, sugg, tc.warning)
		}
	}
	if score, warning, sugg := policies.PasswordStrength("correct horse battery staple 9!x"); score < 3 || warning != "" || len(sugg) != 0 {
		t.Errorf("passphrase: score %d warning %q suggestions %q", score, warning, sugg)
	}
}

// A huge answer is judged by its first MaxPasswordStrengthInput bytes only, cut
// on a character boundary.
func TestPasswordStrengthCapsInput(t *testing.T) {
	head := strings.Repeat("é", policies.MaxPasswordStrengthInput/2-1) + "x" // one byte short of the cap
	huge := head + "é" + strings.Repeat("z", 1<<20)
	s1, w1, _ := policies.PasswordStrength(huge)
	s2, w2, _ := policies.PasswordStrength(head)
	if s1 != s2 || w1 != w2 {
		t.Fatalf("capped %d %q, head %d %q", s1, w1, s2, w2)
	}
}

func TestPasswordStrengthNonString(t *testing.T) {
	// A literal of the wrong type is a type error when the policy loads.
	_, err := policies.Compile(map[string]string{"lit": "package n\nimport rego.v1\nallow if flowgate.password_strength(42).score >= 3\n"})
	if err == nil || !strings.Contains(err.Error(), "password_strength") {
		t.Fatalf("compile: %v", err)
	}
	// A non-string answer is an evaluation error (strict built-ins), never an allow.
	set, err := policies.Compile(map[string]string{"strong": strongPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []any{42, nil, []any{"a"}, map[string]any{"x": "y"}} {
		ok, _, err := set.Evaluate(context.Background(), "strong", prompt(pw))
		if err == nil || ok {
			t.Errorf("%#v: allow=%v err=%v, want an error", pw, ok, err)
		}
	}
}

func BenchmarkPasswordStrengthEval(b *testing.B) {
	set, err := policies.Compile(map[string]string{"strong": strongPolicy})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := prompt("correct horse battery staple 9!x")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := set.Evaluate(ctx, "strong", in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkPasswordStrengthMaxInput(b *testing.B) {
	pw := strings.Repeat("aB3$xY7!", policies.MaxPasswordStrengthInput/8)
	for b.Loop() {
		policies.PasswordStrength(pw)
	}
}
