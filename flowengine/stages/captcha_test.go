package stages_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func TestCaptchaConfig(t *testing.T) {
	checkConfigs(t, "captcha", []configCase{
		{"siteverify defaults", map[string]any{"private_key": "secret"}, ""},
		{"siteverify full", map[string]any{"mode": "siteverify", "api_url": "https://hcaptcha.com/siteverify",
			"js_url": "https://js.hcaptcha.com/1/api.js", "public_key": "site", "private_key": "secret",
			"score_min_threshold": 0.5, "timeout": "2s"}, ""},
		{"siteverify without private key", map[string]any{"public_key": "site"}, "private_key"},
		{"threshold above 1", map[string]any{"private_key": "s", "score_min_threshold": 1.5}, "score_min_threshold"},
		{"threshold below 0", map[string]any{"private_key": "s", "score_min_threshold": -0.1}, "score_min_threshold"},
		{"threshold not a number", map[string]any{"private_key": "s", "score_min_threshold": "high"}, "score_min_threshold"},
		{"bad api url", map[string]any{"private_key": "s", "api_url": "ftp://x/verify"}, "api_url"},
		{"bad js url", map[string]any{"private_key": "s", "js_url": "javascript:alert(1)"}, "js_url"},
		{"js url without host", map[string]any{"private_key": "s", "js_url": "/api.js"}, "js_url"},
		{"js url host not for a CSP", map[string]any{"private_key": "s", "js_url": "https://a;script-src*/api.js"}, "js_url"},
		{"bad timeout", map[string]any{"private_key": "s", "timeout": "soon"}, "timeout"},
		{"negative timeout", map[string]any{"private_key": "s", "timeout": "-1s"}, "timeout"},
		{"difficulty with siteverify", map[string]any{"private_key": "s", "difficulty": 10}, "difficulty"},
		{"proof of work default", map[string]any{"mode": "proof_of_work"}, ""},
		{"proof of work difficulty", map[string]any{"mode": "proof_of_work", "difficulty": 20}, ""},
		{"difficulty above cap", map[string]any{"mode": "proof_of_work", "difficulty": 25}, "difficulty"},
		{"difficulty negative", map[string]any{"mode": "proof_of_work", "difficulty": -1}, "difficulty"},
		{"private key with proof of work", map[string]any{"mode": "proof_of_work", "private_key": "s"}, "private_key"},
		{"bad mode", map[string]any{"mode": "riddle"}, "mode"},
		{"unknown key", map[string]any{"private_key": "s", "secret": "x"}, `unknown config key "secret"`},
	})
}

func captchaContext() *flowengine.StageContext {
	return &flowengine.StageContext{
		Flow: &flowengine.Flow{Slug: "enroll"}, StageName: "captcha", StageType: "captcha",
		Request: &flowengine.Request{ClientIP: "192.0.2.7"},
		Context: map[string]any{}, State: map[string]any{},
	}
}

// fakeVerifier is a siteverify API on loopback: it records each form it gets
// and answers with reply.
type fakeVerifier struct {
	mu    sync.Mutex
	forms []map[string]string
	reply string
	delay time.Duration
}

func (f *fakeVerifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.forms = append(f.forms, map[string]string{
		"secret": r.PostForm.Get("secret"), "response": r.PostForm.Get("response"), "remoteip": r.PostForm.Get("remoteip"),
	})
	reply, delay := f.reply, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(reply))
}

func TestCaptchaSiteverify(t *testing.T) {
	cases := []struct {
		name      string
		reply     string
		delay     time.Duration
		threshold any
		token     string
		pass      bool
	}{
		{"success", `{"success": true}`, 0, nil, "tok", true},
		{"failure", `{"success": false, "error-codes": ["invalid-input-response"]}`, 0, nil, "tok", false},
		{"score above threshold", `{"success": true, "score": 0.9}`, 0, 0.5, "tok", true},
		{"score at threshold", `{"success": true, "score": 0.5}`, 0, 0.5, "tok", true},
		{"score below threshold", `{"success": true, "score": 0.2}`, 0, 0.5, "tok", false},
		{"no score with threshold", `{"success": true}`, 0, 0.5, "tok", false},
		{"not json", `<html>oops</html>`, 0, nil, "tok", false},
		{"timeout fails closed", `{"success": true}`, 2 * time.Second, nil, "tok", false},
		{"empty token not sent", `{"success": true}`, 0, nil, " ", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeVerifier{reply: tc.reply, delay: tc.delay}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			cfg := map[string]any{"api_url": srv.URL, "public_key": "site-key", "private_key": "very-secret", "timeout": "200ms"}
			if tc.threshold != nil {
				cfg["score_min_threshold"] = tc.threshold
			}
			s := newStage(t, "captcha", cfg)
			sc := captchaContext()
			ch, err := s.Challenge(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(ch)
			if strings.Contains(string(raw), "very-secret") {
				t.Fatalf("challenge shows the secret: %s", raw)
			}
			if ch.Data["site_key"] != "site-key" || ch.Data["js_url"] == "" {
				t.Fatalf("data %v", ch.Data)
			}
			if len(ch.Fields) != 1 || ch.Fields[0].Key != "token" || !ch.Fields[0].Required {
				t.Fatalf("fields %+v", ch.Fields)
			}
			start := time.Now()
			out, err := s.Submit(context.Background(), sc, flowengine.Answer{"token": tc.token})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("submit took %v despite the 200ms timeout", took)
			}
			if pass := out.Kind == flowengine.OutcomeContinue; pass != tc.pass {
				t.Fatalf("outcome %+v, want pass=%v", out, tc.pass)
			}
			if !tc.pass && len(out.Errors["token"]) == 0 {
				t.Fatalf("refusal without a token error: %+v", out)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if strings.TrimSpace(tc.token) == "" {
				if len(fake.forms) != 0 {
					t.Fatalf("empty token sent to the verifier: %v", fake.forms)
				}
				return
			}
			want := map[string]string{"secret": "very-secret", "response": tc.token, "remoteip": "192.0.2.7"}
			if len(fake.forms) != 1 || fmt.Sprint(fake.forms[0]) != fmt.Sprint(want) {
				t.Fatalf("verifier got %v, want %v", fake.forms, want)
			}
		})
	}
}

func TestCaptchaSiteverifyUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	for _, url := range []string{addr, addr + "/500"} {
		s := newStage(t, "captcha", map[string]any{"api_url": url, "private_key": "k", "timeout": "500ms"})
		out, err := s.Submit(context.Background(), captchaContext(), flowengine.Answer{"token": "tok"})
		if err != nil {
			t.Fatal(err)
		}
		if out.Kind != flowengine.OutcomeInvalid {
			t.Fatalf("unreachable verifier gave %+v, want a refusal", out)
		}
	}
	// A verifier answering an error status fails closed too.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"success": true}`, http.StatusInternalServerError)
	}))
	defer bad.Close()
	s := newStage(t, "captcha", map[string]any{"api_url": bad.URL, "private_key": "k"})
	if out, _ := s.Submit(context.Background(), captchaContext(), flowengine.Answer{"token": "tok"}); out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("error status gave %+v, want a refusal", out)
	}
}

// powPuzzle reads the proof-of-work puzzle of a challenge.
func powPuzzle(t *testing.T, ch *flowengine.Challenge) (string, int) {
	t.Helper()
	pow, _ := ch.Data["pow"].(map[string]any)
	challenge, _ := pow["challenge"].(string)
	difficulty, _ := pow["difficulty"].(int)
	if challenge == "" || difficulty == 0 || pow["algorithm"] != "sha256" {
		t.Fatalf("puzzle %v", ch.Data)
	}
	return challenge, difficulty
}

// solvePoW finds a nonce the way pow.js does: counting up from 0.
func solvePoW(challenge string, difficulty int) string {
	for n := 0; ; n++ {
		nonce := strconv.Itoa(n)
		if zeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) >= difficulty {
			return nonce
		}
	}
}

func zeroBits(sum [32]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

func TestCaptchaProofOfWork(t *testing.T) {
	ctx := context.Background()
	s := newStage(t, "captcha", map[string]any{"mode": "proof_of_work", "difficulty": 8})
	sc := captchaContext()
	ch, err := s.Challenge(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	challenge, difficulty := powPuzzle(t, ch)
	if difficulty != 8 {
		t.Fatalf("difficulty %d", difficulty)
	}
	again, _ := s.Challenge(ctx, sc)
	if c, _ := powPuzzle(t, again); c != challenge {
		t.Fatalf("the same execution got two puzzles: %q, %q", challenge, c)
	}
	if other, _ := s.Challenge(ctx, captchaContext()); other != nil {
		if c, _ := powPuzzle(t, other); c == challenge {
			t.Fatal("two executions share a puzzle")
		}
	}

	// A wrong nonce is refused, and retires the puzzle.
	wrong := "0"
	for zeroBits(sha256.Sum256([]byte(challenge+":"+wrong))) >= difficulty {
		wrong += "0"
	}
	out, err := s.Submit(ctx, sc, flowengine.Answer{"token": wrong})
	if err != nil || out.Kind != flowengine.OutcomeInvalid || len(out.Errors["token"]) == 0 {
		t.Fatalf("wrong nonce: %+v, %v", out, err)
	}
	ch, _ = s.Challenge(ctx, sc)
	next, _ := powPuzzle(t, ch)
	if next == challenge {
		t.Fatal("the puzzle did not change after a wrong answer")
	}
	// A nonce for the retired puzzle is refused (replay), and retires the next.
	// (Choose one that does not happen to solve the new puzzle as well.)
	var stale string
	for n := 0; stale == ""; n++ {
		nonce := strconv.Itoa(n)
		if zeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) >= difficulty &&
			zeroBits(sha256.Sum256([]byte(next+":"+nonce))) < difficulty {
			stale = nonce
		}
	}
	if out, _ := s.Submit(ctx, sc, flowengine.Answer{"token": stale}); out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("nonce of a retired puzzle: %+v", out)
	}
	ch, _ = s.Challenge(ctx, sc)
	current, _ := powPuzzle(t, ch)
	if current == next {
		t.Fatal("the puzzle did not change after a replayed answer")
	}

	// The right nonce passes once; replayed after, it is refused.
	nonce := solvePoW(current, difficulty)
	if out, err := s.Submit(ctx, sc, flowengine.Answer{"token": nonce}); err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("right nonce: %+v, %v", out, err)
	}
	if out, _ := s.Submit(ctx, sc, flowengine.Answer{"token": nonce}); out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("replayed nonce: %+v", out)
	}
	// No puzzle was ever shown: nothing passes.
	if out, _ := s.Submit(ctx, captchaContext(), flowengine.Answer{"token": "1"}); out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("answer without a puzzle: %+v", out)
	}
}

func TestCaptchaProofOfWorkDefaultDifficulty(t *testing.T) {
	s := newStage(t, "captcha", map[string]any{"mode": "proof_of_work"})
	ch, err := s.Challenge(context.Background(), captchaContext())
	if err != nil {
		t.Fatal(err)
	}
	if _, d := powPuzzle(t, ch); d != 15 {
		t.Fatalf("default difficulty %d, want 15", d)
	}
}
