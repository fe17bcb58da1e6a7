package policies

import (
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
	"github.com/open-policy-agent/opa/v1/types"
	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
)

// MaxPasswordStrengthInput is how many bytes of a password
// flowgate.password_strength considers (cut back to a whole character). zxcvbn's
// cost grows about with the cube of the length (measured worst cases: ~15 ms at
// 64 bytes, ~80 ms at 128, ~0.4 s at 256), and the answer comes from anyone
// who can reach an enrollment form, so a longer password is judged by its
// first 64 bytes: 64 characters that zxcvbn calls weak are not made strong by
// what follows often enough to pay for reading it.
const MaxPasswordStrengthInput = 64

// passwordStrengthDecl declares flowgate.password_strength(pw) for the type
// checker (through capabilities) and for evaluation (through rego.Function1).
var passwordStrengthDecl = &rego.Function{
	Name: "flowgate.password_strength",
	Description: "Estimates a password's strength with zxcvbn: score 0 (weakest) to 4, " +
		"a warning and suggestions (both empty when the score is 3 or more).",
	Decl: types.NewFunction(
		types.Args(types.Named("pw", types.S).Description("the password; only its first 64 bytes are considered")),
		types.Named("result", types.NewObject([]*types.StaticProperty{
			types.NewStaticProperty("score", types.N),
			types.NewStaticProperty("warning", types.S),
			types.NewStaticProperty("suggestions", types.NewArray(nil, types.S)),
		}, nil)).Description("{score, warning, suggestions}"),
	),
	Memoize: true,
}

// passwordStrengthBuiltin is the declaration the shared capabilities carry, so
// a module calling the function compiles.
var passwordStrengthBuiltin = &ast.Builtin{
	Name:        passwordStrengthDecl.Name,
	Description: passwordStrengthDecl.Description,
	Decl:        passwordStrengthDecl.Decl,
}

// passwordStrength implements flowgate.password_strength.
func passwordStrength(_ rego.BuiltinContext, pw *ast.Term) (*ast.Term, error) {
	s, ok := pw.Value.(ast.String)
	if !ok {
		return nil, builtins.NewOperandTypeErr(1, pw.Value, "string")
	}
	score, warning, suggestions := PasswordStrength(string(s))
	sugg := make([]*ast.Term, len(suggestions))
	for i, x := range suggestions {
		sugg[i] = ast.StringTerm(x)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("score"), ast.IntNumberTerm(score)),
		ast.Item(ast.StringTerm("warning"), ast.StringTerm(warning)),
		ast.Item(ast.StringTerm("suggestions"), ast.ArrayTerm(sugg...)),
	), nil
}

// PasswordStrength is what flowgate.password_strength returns: zxcvbn's score
// (0–4) and, for scores below 3, a warning and suggestions. The Go port of
// zxcvbn gives no feedback, so these are upstream zxcvbn 4.4.2's feedback
// rules applied to the longest match zxcvbn reports, in its words.
func PasswordStrength(pw string) (score int, warning string, suggestions []string) {
	if len(pw) > MaxPasswordStrengthInput {
		cut := MaxPasswordStrengthInput
		for cut > 0 && !utf8.RuneStart(pw[cut]) {
			cut--
		}
		pw = pw[:cut]
	}
	if pw == "" {
		return 0, "", []string{"Use a few words, avoid common phrases.",
			"No need for symbols, digits, or uppercase letters."}
	}
	res := zxcvbn.PasswordStrength(pw, nil)
	if res.Score > 2 {
		return res.Score, "", []string{}
	}
	var longest *match.Match
	for _, m := range res.Sequence {
		if longest == nil || len(m.Token) > len(longest.Token) {
			longest = m
		}
	}
	const more = "Add another word or two. Uncommon words are better."
	if longest == nil { // invalid UTF-8: zxcvbn reports nothing
		return res.Score, "", []string{more}
	}
	warning, suggestions = matchFeedback(longest, len(res.Sequence) == 1)
	return res.Score, warning, append([]string{more}, suggestions...)
}

// matchFeedback is upstream zxcvbn's get_match_feedback.
func matchFeedback(m *match.Match, sole bool) (string, []string) {
	switch m.Pattern {
	case "dictionary":
		return dictionaryFeedback(m, sole)
	case "spatial":
		w := "Short keyboard patterns are easy to guess."
		if m.Turns == 1 {
			w = "Straight rows of keys are easy to guess."
		}
		return w, []string{"Use a longer keyboard pattern with more turns."}
	case "repeat":
		w := `Repeats like "abcabcabc" are only slightly harder to guess than "abc".`
		if utf8.RuneCountInString(m.BaseToken) == 1 {
			w = `Repeats like "aaa" are easy to guess.`
		}
		return w, []string{"Avoid repeated words and characters."}
	case "sequence":
		return "Sequences like abc or 6543 are easy to guess.", []string{"Avoid sequences."}
	case "regex":
		if m.RegexName == "recent_year" {
			return "Recent years are easy to guess.",
				[]string{"Avoid recent years.", "Avoid years that are associated with you."}
		}
	case "date":
		return "Dates are often easy to guess.", []string{"Avoid dates and years that are associated with you."}
	}
	return "", nil
}

func dictionaryFeedback(m *match.Match, sole bool) (string, []string) {
	var w string
	switch m.DictionaryName {
	case "passwords":
		switch {
		case sole && !m.L33t && !m.Reversed && m.Rank <= 10:
			w = "This is a top-10 common password."
		case sole && !m.L33t && !m.Reversed && m.Rank <= 100:
			w = "This is a top-100 common password."
		case sole && !m.L33t && !m.Reversed:
			w = "This is a very common password."
		case math.Log10(m.Guesses) <= 4:
			w = "This is similar to a commonly used password."
		}
	case "english_wikipedia":
		if sole {
			w = "A word by itself is easy to guess."
		}
	case "surnames", "male_names", "female_names":
		w = "Common names and surnames are easy to guess."
		if sole {
			w = "Names and surnames by themselves are easy to guess."
		}
	}
	var s []string
	runes := []rune(m.Token)
	switch {
	case isUpper(runes):
		s = append(s, "All-uppercase is almost as easy to guess as all-lowercase.")
	case len(runes) > 0 && unicode.IsUpper(runes[0]):
		s = append(s, "Capitalization doesn't help very much.")
	}
	if m.Reversed && len(runes) >= 4 {
		s = append(s, "Reversed words aren't much harder to guess.")
	}
	if m.L33t {
		s = append(s, "Predictable substitutions like '@' instead of 'a' don't help very much.")
	}
	return w, s
}

// isUpper reports whether every letter is upper case and there is at least one.
func isUpper(rs []rune) bool {
	letters := 0
	for _, r := range rs {
		if unicode.IsLetter(r) {
			if !unicode.IsUpper(r) {
				return false
			}
			letters++
		}
	}
	return letters > 0
}
