package stages

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

func init() { register("captcha", newCaptcha) }

// CaptchaMode says how the captcha stage tells people from bots.
type CaptchaMode string

// Captcha modes.
const (
	// Siteverify asks a third-party verifier (Cloudflare Turnstile, hCaptcha,
	// reCAPTCHA: they share one API shape) about the token its widget gave.
	Siteverify CaptchaMode = "siteverify"
	// ProofOfWork asks for a nonce whose hash with a random challenge has enough
	// leading zero bits: no third party, and each attempt costs a bot real CPU.
	ProofOfWork CaptchaMode = "proof_of_work"
)

// Captcha defaults and bounds.
const (
	// DefaultTurnstileAPIURL is Cloudflare Turnstile's siteverify endpoint.
	DefaultTurnstileAPIURL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
	// DefaultTurnstileJSURL is Cloudflare Turnstile's widget script.
	DefaultTurnstileJSURL = "https://challenges.cloudflare.com/turnstile/v0/api.js"
	// DefaultPoWDifficulty is about half a second in a browser: 2^15 SHA-256
	// digests expected. pow.js in headless Chromium on a 2-core VM computed
	// 80k digests a second (batched crypto.subtle); difficulty 16 took 0.96 s
	// on average over 10 puzzles, so 15 is ≈ 0.5 s there (faster on a desktop,
	// slower on an old phone).
	DefaultPoWDifficulty = 15
	// MaxPoWDifficulty caps the puzzle: 2^24 digests is about 3 minutes at the
	// rate measured above, already more than any visitor waits.
	MaxPoWDifficulty      = 24
	defaultCaptchaTimeout = 5 * time.Second
	// maxSiteverifyBody bounds what is read from the verifier.
	maxSiteverifyBody = 64 << 10
)

// CaptchaConfig configures the captcha stage.
type CaptchaConfig struct {
	// Mode is siteverify or proof_of_work (default siteverify).
	Mode CaptchaMode `json:"mode,omitempty"`
	// APIURL is the verifier's siteverify endpoint (default Cloudflare
	// Turnstile's). Siteverify only.
	APIURL string `json:"api_url,omitempty"`
	// JSURL is the widget script a page loads (default Cloudflare Turnstile's).
	// Siteverify only.
	JSURL string `json:"js_url,omitempty"`
	// PublicKey is the site key the widget shows. Siteverify only.
	PublicKey string `json:"public_key,omitempty"`
	// PrivateKey is the secret sent to the verifier (required in siteverify
	// mode). It is never shown to the visitor.
	PrivateKey string `json:"private_key,omitempty"`
	// ScoreMinThreshold, between 0 and 1, refuses a verdict whose score is
	// lower, or which has no score (reCAPTCHA v3, hCaptcha Enterprise; default
	// none: success alone passes).
	ScoreMinThreshold *float64 `json:"score_min_threshold,omitempty"`
	// Timeout bounds a call to the verifier (default 5s).
	Timeout string `json:"timeout,omitempty"`
	// Difficulty is the number of leading zero bits the proof of work needs,
	// 1 to 24 (default 15, about half a second in a browser). Proof of work only.
	Difficulty int `json:"difficulty,omitempty"`
}

// captchaField is the challenge's field and the answer key: the widget's token
// or the proof of work's nonce.
const captchaField = "token"

// powChallengeKey is the State key of the current proof-of-work challenge.
const powChallengeKey = "pow_challenge"

// captchaFailed is the error shown when an answer does not pass.
const captchaFailed = "The captcha was not solved. Try again."

type captcha struct {
	cfg        CaptchaConfig
	difficulty int
	client     *http.Client
}

func newCaptcha(def flowengine.StageDef) (flowengine.Stage, error) {
	s := &captcha{}
	if err := flowengine.DecodeConfig(def.Config, &s.cfg); err != nil {
		return nil, err
	}
	c := &s.cfg
	switch c.Mode {
	case "":
		c.Mode = Siteverify
	case Siteverify, ProofOfWork:
	default:
		return nil, fmt.Errorf("mode: %q is not siteverify or proof_of_work", c.Mode)
	}
	if c.Mode == ProofOfWork {
		for key, set := range map[string]bool{
			"api_url": c.APIURL != "", "js_url": c.JSURL != "", "public_key": c.PublicKey != "",
			"private_key": c.PrivateKey != "", "score_min_threshold": c.ScoreMinThreshold != nil, "timeout": c.Timeout != "",
		} {
			if set {
				return nil, fmt.Errorf("%s: applies only to mode siteverify", key)
			}
		}
		switch {
		case c.Difficulty == 0:
			s.difficulty = DefaultPoWDifficulty
		case c.Difficulty < 1 || c.Difficulty > MaxPoWDifficulty:
			return nil, fmt.Errorf("difficulty: %d is not between 1 and %d", c.Difficulty, MaxPoWDifficulty)
		default:
			s.difficulty = c.Difficulty
		}
		return s, nil
	}
	if c.Difficulty != 0 {
		return nil, errors.New("difficulty: applies only to mode proof_of_work")
	}
	if c.PrivateKey == "" {
		return nil, errors.New("private_key: required in mode siteverify")
	}
	if c.APIURL == "" {
		c.APIURL = DefaultTurnstileAPIURL
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("api_url: %q is not an http(s) URL", c.APIURL)
	}
	if c.JSURL == "" {
		c.JSURL = DefaultTurnstileJSURL
	}
	// The HTML page loads the script and its CSP allows the script's origin:
	// an http(s) URL whose host is a plain name, address or [IPv6] (and port).
	if u, err := url.Parse(c.JSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || strings.Trim(u.Host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != "" {
		return nil, fmt.Errorf("js_url: %q is not an http(s) URL", c.JSURL)
	}
	if t := c.ScoreMinThreshold; t != nil && (*t < 0 || *t > 1) {
		return nil, fmt.Errorf("score_min_threshold: %v is not between 0 and 1", *t)
	}
	d, err := flowengine.ParseDuration(c.Timeout)
	switch {
	case err != nil:
		return nil, fmt.Errorf("timeout: %w", err)
	case d < 0:
		return nil, errors.New("timeout: must not be negative")
	case d == 0:
		d = defaultCaptchaTimeout
	}
	s.client = &http.Client{Timeout: d}
	return s, nil
}

func (s *captcha) Challenge(_ context.Context, sc *flowengine.StageContext) (*flowengine.Challenge, error) {
	field := flowengine.Field{Key: captchaField, Type: flowengine.FieldHidden, Label: "Captcha", Required: true}
	if s.cfg.Mode == Siteverify {
		// The private key stays here: only what the widget needs is shown.
		return &flowengine.Challenge{
			Fields: []flowengine.Field{field},
			Data:   map[string]any{"site_key": s.cfg.PublicKey, "js_url": s.cfg.JSURL},
		}, nil
	}
	challenge, _ := sc.State[powChallengeKey].(string)
	if challenge == "" {
		challenge = newPoWChallenge(sc)
	}
	return &flowengine.Challenge{
		Fields: []flowengine.Field{field},
		Data: map[string]any{"pow": map[string]any{
			"challenge": challenge, "difficulty": s.difficulty, "algorithm": "sha256",
		}},
	}, nil
}

func (s *captcha) Submit(ctx context.Context, sc *flowengine.StageContext, answer flowengine.Answer) (flowengine.Outcome, error) {
	token := strings.TrimSpace(answer[captchaField])
	if s.cfg.Mode == ProofOfWork {
		challenge, _ := sc.State[powChallengeKey].(string)
		// Single use: any answer, right or wrong, retires the challenge, so a
		// solved nonce cannot be replayed and a wrong one cannot be retried
		// against the same puzzle.
		newPoWChallenge(sc)
		if challenge == "" || token == "" || leadingZeroBits(challenge, token) < s.difficulty {
			return captchaInvalid(), nil
		}
		return flowengine.Continue(), nil
	}
	if token == "" {
		return captchaInvalid(), nil
	}
	clientIP := ""
	if sc.Request != nil {
		clientIP = sc.Request.ClientIP
	}
	if err := s.verify(ctx, token, clientIP); err != nil {
		// Fail closed: a verifier that is down, slow or says no never lets
		// anyone through.
		return captchaInvalid(), nil
	}
	return flowengine.Continue(), nil
}

func captchaInvalid() flowengine.Outcome {
	return flowengine.Invalid(map[string][]string{captchaField: {captchaFailed}})
}

// newPoWChallenge stores a fresh random challenge in the stage's State.
func newPoWChallenge(sc *flowengine.StageContext) string {
	c := rand.Text()
	sc.State[powChallengeKey] = c
	return c
}

// leadingZeroBits counts the leading zero bits of sha256(challenge + ":" + nonce).
func leadingZeroBits(challenge, nonce string) int {
	sum := sha256.Sum256([]byte(challenge + ":" + nonce))
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// siteverifyResponse is the part of the verifier's answer flowgate reads.
type siteverifyResponse struct {
	Success    bool     `json:"success"`
	Score      *float64 `json:"score"`
	ErrorCodes []string `json:"error-codes"`
}

// verify asks the verifier about token; nil only when it says yes (and the
// score, if one is required, is high enough).
func (s *captcha) verify(ctx context.Context, token, clientIP string) error {
	form := url.Values{"secret": {s.cfg.PrivateKey}, "response": {token}}
	if clientIP != "" {
		form.Set("remoteip", clientIP)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.APIURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("calling the verifier: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("verifier answered %s", resp.Status)
	}
	var v siteverifyResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSiteverifyBody)).Decode(&v); err != nil {
		return fmt.Errorf("reading the verifier's answer: %w", err)
	}
	if !v.Success {
		return fmt.Errorf("verifier refused the token %v", v.ErrorCodes)
	}
	if threshold := s.cfg.ScoreMinThreshold; threshold != nil {
		if v.Score == nil {
			return errors.New("verifier gave no score")
		}
		if *v.Score < *threshold {
			return fmt.Errorf("score %v is below %v", *v.Score, *threshold)
		}
	}
	return nil
}

// Interface guard.
var _ flowengine.Stage = (*captcha)(nil)
