package stages_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/templates"
)

func TestTOTPConfig(t *testing.T) {
	checkConfigs(t, "authenticator_totp", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"digits": 8, "friendly_name": "Phone", "configure_flow": "setup-totp"}, ""},
		{"period and issuer", map[string]any{"period": 60, "issuer": "Example Corp"}, ""},
		{"seven digits", map[string]any{"digits": 7}, "digits"},
		{"digits as text", map[string]any{"digits": "six"}, `"digits"`},
		{"negative period", map[string]any{"period": -30}, "period"},
		{"huge period", map[string]any{"period": 3600}, "period"},
		{"issuer with colon", map[string]any{"issuer": "a:b"}, "issuer"},
		{"unknown key", map[string]any{"algorithm": "SHA256"}, `unknown config key "algorithm"`},
	})
}

// testSecrets seals with a fixed key, as the gateway does with its cookie keys.
func testSecrets(t testing.TB) flowengine.Secrets {
	t.Helper()
	box, err := flowengine.NewSecretBox([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// oathtool computes a TOTP code with OATH Toolkit, an implementation
// independent of the one the stages use. Under CI it must be installed.
func oathtool(t testing.TB, secret string, digits, period int, at time.Time) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("oathtool is needed under CI (apt-get install oathtool): %v", err)
		}
		t.Skipf("oathtool not installed, skipping (apt-get install oathtool): %v", err)
	}
	out, err := exec.Command(path, "--totp", "-b", "-d", strconv.Itoa(digits), "-s", fmt.Sprintf("%ds", period),
		"--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// mfaContext is a stage context for alice on example.com:8443 with secrets.
func mfaContext(t testing.TB, e *stageEnv, store flowengine.Store) *flowengine.StageContext {
	t.Helper()
	sc := e.stageContext(nil, e.alice, nil)
	if store != nil {
		sc.Store = store
	}
	sc.Request.Host = "example.com:8443"
	sc.Services.Secrets = testSecrets(t)
	return sc
}

// totpSetup shows the setup challenge and returns it with its secret.
func totpSetup(t testing.TB, s flowengine.Stage, sc *flowengine.StageContext) (*flowengine.Challenge, string) {
	t.Helper()
	ch, err := s.Challenge(context.Background(), sc)
	if err != nil || ch == nil {
		t.Fatalf("challenge %v, %v", ch, err)
	}
	secret, _ := ch.Data["secret"].(string)
	if secret == "" {
		t.Fatalf("no secret in %v", ch.Data)
	}
	return ch, secret
}

func TestTOTPSetupChallenge(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_totp", nil)
	ch, secret := totpSetup(t, s, sc)

	if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret); err != nil || len(raw) != 20 {
		t.Fatalf("secret %q: %d bytes, %v; want 20 bytes of base32", secret, len(raw), err)
	}
	f := ch.Fields
	if len(f) != 1 || f[0].Key != "code" || f[0].Type != flowengine.FieldCode || !f[0].Required || f[0].Autocomplete != "one-time-code" {
		t.Fatalf("fields %+v", f)
	}

	raw, _ := ch.Data["otpauth_url"].(string)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/example.com:alice" || q.Get("secret") != secret ||
		q.Get("issuer") != "example.com" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Fatalf("otpauth_url %s", raw)
	}

	qr, _ := ch.Data["qr_png"].(string)
	b64, ok := strings.CutPrefix(qr, "data:image/png;base64,")
	if !ok {
		t.Fatalf("qr_png %.40q…", qr)
	}
	pngBytes, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatalf("qr_png is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Fatalf("QR image %v: too small to scan", b)
	}

	// The execution keeps the secret sealed only, and a second look shows
	// the same secret.
	state, _ := json.Marshal(sc.State)
	if bytes.Contains(state, []byte(secret)) {
		t.Fatalf("state holds the secret in the clear: %s", state)
	}
	if _, again := totpSetup(t, s, sc); again != secret {
		t.Fatal("a second challenge showed another secret")
	}
	// The state survives the store's JSON round trip.
	var decoded map[string]any
	if err := json.Unmarshal(state, &decoded); err != nil {
		t.Fatal(err)
	}
	sc.State = decoded
	if _, again := totpSetup(t, s, sc); again != secret {
		t.Fatal("the secret changed after a JSON round trip of the state")
	}
}

func TestTOTPSetupIssuerAndDigits(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_totp", map[string]any{"issuer": "Example Corp", "digits": 8, "period": 60})
	ch, secret := totpSetup(t, s, sc)
	u, err := url.Parse(ch.Data["otpauth_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); u.Path != "/Example Corp:alice" || q.Get("issuer") != "Example Corp" || q.Get("digits") != "8" || q.Get("period") != "60" {
		t.Fatalf("otpauth_url %s", u)
	}
	code := oathtool(t, secret, 8, 60, e.clock.Now())
	if len(code) != 8 {
		t.Fatalf("oathtool gave %q", code)
	}
	out, err := s.Submit(context.Background(), sc, flowengine.Answer{"code": code})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	dev := totpDevices(t, e)[0]
	if dev.TOTP.Digits != 8 || dev.TOTP.Period != 60 || dev.TOTP.LastStep != e.clock.Now().Unix()/60 {
		t.Fatalf("device %+v", dev.TOTP)
	}
}

func totpDevices(t *testing.T, e *stageEnv) []flowengine.Device {
	t.Helper()
	u, err := e.store.GetUser(context.Background(), e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.DevicesOf(flowengine.DeviceTOTP)
}

func TestTOTPSetupRefusesWrongCode(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_totp", nil)
	_, secret := totpSetup(t, s, sc)
	right := oathtool(t, secret, 6, 30, e.clock.Now())
	wrong := oathtool(t, secret, 6, 30, e.clock.Now().Add(-5*time.Minute))
	if wrong == right {
		t.Skip("codes five minutes apart happen to be equal")
	}
	for _, code := range []string{wrong, "", "12345", "1234567", "abcdef", right + "x"} {
		out, err := s.Submit(context.Background(), sc, flowengine.Answer{"code": code})
		if err != nil {
			t.Fatal(err)
		}
		if out.Kind != flowengine.OutcomeInvalid || len(out.Errors["code"]) == 0 {
			t.Fatalf("code %q: outcome %+v, want invalid with an error on code", code, out)
		}
	}
	if d := totpDevices(t, e); len(d) != 0 {
		t.Fatalf("a wrong code saved %+v", d)
	}
	if len(sc.AuthMethods()) != 0 {
		t.Fatalf("auth methods %v", sc.AuthMethods())
	}
}

func TestTOTPSetupSavesDevice(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_totp", map[string]any{"friendly_name": "Work phone"})
	_, secret := totpSetup(t, s, sc)
	e.clock.Advance(20 * time.Second) // typing takes a while; the step may change
	code := oathtool(t, secret, 6, 30, e.clock.Now())
	out, err := s.Submit(ctx, sc, flowengine.Answer{"code": code[:3] + " " + code[3:]})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if m := sc.AuthMethods(); len(m) != 1 || m[0] != flowengine.MethodOTP {
		t.Fatalf("auth methods %v", m)
	}
	devs := totpDevices(t, e)
	if len(devs) != 1 {
		t.Fatalf("devices %+v", devs)
	}
	d := devs[0]
	if d.Name != "Work phone" || d.TOTP.Digits != 6 || d.TOTP.Period != 30 || d.TOTP.LastStep != e.clock.Now().Unix()/30 {
		t.Fatalf("device %+v %+v", d, d.TOTP)
	}
	u, _ := e.store.GetUser(ctx, e.alice.ID)
	stored, _ := json.Marshal(u)
	if bytes.Contains(stored, []byte(secret)) {
		t.Fatal("the stored user holds the TOTP secret in the clear")
	}
	plain, err := sc.Services.Secrets.Open(d.TOTP.Secret, []byte(e.alice.ID+"/"+d.ID))
	if err != nil || string(plain) != secret {
		t.Fatalf("sealed secret opens to %q, %v", plain, err)
	}
	if _, err := sc.Services.Secrets.Open(d.TOTP.Secret, []byte("someone-else/"+d.ID)); err == nil {
		t.Fatal("the sealed secret opens for another user")
	}
	if len(sc.State) != 0 {
		t.Fatalf("state kept after setup: %v", sc.State)
	}
	// The code typed at setup is spent: it cannot also sign in.
	if dev, err := stages.CheckTOTP(ctx, sc, e.alice.ID, code); err != nil || dev != nil {
		t.Fatalf("setup code reused: %v, %v", dev, err)
	}
}

func TestTOTPSetupNeedsUserAndSecrets(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	s := newStage(t, "authenticator_totp", nil)

	sc := mfaContext(t, e, nil)
	delete(sc.Context, flowengine.CtxPendingUser)
	if ch, err := s.Challenge(ctx, sc); ch != nil || err != nil {
		t.Fatalf("no pending user: challenge %v, %v", ch, err)
	}
	if out, err := s.Submit(ctx, sc, flowengine.Answer{}); err != nil || out.Kind != flowengine.OutcomeDeny || len(out.Messages) == 0 {
		t.Fatalf("no pending user: %+v, %v", out, err)
	}

	sc = mfaContext(t, e, nil)
	sc.Services.Secrets = nil
	if _, err := s.Challenge(ctx, sc); err == nil || !strings.Contains(err.Error(), "secret keys") {
		t.Fatalf("no secrets: %v", err)
	}
}

// An answer before any secret was shown in this execution saves nothing.
func TestTOTPSetupAnswerBeforeShown(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_totp", nil)
	out, err := s.Submit(context.Background(), sc, flowengine.Answer{"code": "123456"})
	if err != nil || out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if d := totpDevices(t, e); len(d) != 0 {
		t.Fatalf("saved %+v", d)
	}
	// The secret made then is the one the page shows.
	_, secret := totpSetup(t, s, sc)
	out, err = s.Submit(context.Background(), sc, flowengine.Answer{"code": oathtool(t, secret, 6, 30, e.clock.Now())})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
}

// totpDevice sets up a TOTP device for alice through the stage and returns
// its secret and the step of the code used to set it up.
func totpDevice(t testing.TB, e *stageEnv, sc *flowengine.StageContext, digits, period int) string {
	t.Helper()
	s := newStage(t, "authenticator_totp", map[string]any{"digits": digits, "period": period})
	_, secret := totpSetup(t, s, sc)
	out, err := s.Submit(context.Background(), sc, flowengine.Answer{"code": oathtool(t, secret, digits, period, e.clock.Now())})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("setup: %+v, %v", out, err)
	}
	return secret
}

func TestTOTPCheck(t *testing.T) {
	for _, p := range []struct{ digits, period int }{{6, 30}, {8, 60}} {
		t.Run(fmt.Sprintf("%d digits %ds", p.digits, p.period), func(t *testing.T) {
			ctx := context.Background()
			step := time.Duration(p.period) * time.Second
			cases := []struct {
				name   string
				offset time.Duration // of the code from the clock
				ok     bool
			}{
				{"current", 0, true},
				{"one step early", -step, true},
				{"one step late", step, true},
				{"two steps early", -2 * step, false},
				{"two steps late", 2 * step, false},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := newStageEnv(t)
					sc := mfaContext(t, e, nil)
					secret := totpDevice(t, e, sc, p.digits, p.period)
					e.clock.Advance(10 * step) // past the setup code's step
					code := oathtool(t, secret, p.digits, p.period, e.clock.Now().Add(tc.offset))
					dev, err := stages.CheckTOTP(ctx, sc, e.alice.ID, code)
					if err != nil {
						t.Fatal(err)
					}
					if (dev != nil) != tc.ok {
						t.Fatalf("accepted %v, want %v", dev != nil, tc.ok)
					}
					if !tc.ok {
						return
					}
					want := e.clock.Now().Add(tc.offset).Unix() / int64(p.period)
					if dev.TOTP.LastStep != want || !dev.LastUsed.Equal(e.clock.Now()) {
						t.Fatalf("device after use: last step %d (want %d), last used %v", dev.TOTP.LastStep, want, dev.LastUsed)
					}
					if stored := totpDevices(t, e)[0]; stored.TOTP.LastStep != want {
						t.Fatalf("stored last step %d, want %d", stored.TOTP.LastStep, want)
					}
				})
			}
		})
	}
}

func TestTOTPCheckRefusesReplay(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	secret := totpDevice(t, e, sc, 6, 30)
	e.clock.Advance(5 * time.Minute)
	older := oathtool(t, secret, 6, 30, e.clock.Now().Add(-30*time.Second))
	code := oathtool(t, secret, 6, 30, e.clock.Now())
	if older == code {
		t.Skip("two consecutive codes happen to be equal")
	}
	check := func(code string) bool {
		t.Helper()
		dev, err := stages.CheckTOTP(ctx, sc, e.alice.ID, code)
		if err != nil {
			t.Fatal(err)
		}
		return dev != nil
	}
	if !check(code[:3] + " " + code[3:]) {
		t.Fatal("current code refused")
	}
	if check(code) {
		t.Fatal("the same code accepted twice")
	}
	if check(older) {
		t.Fatal("an older code accepted after a newer one")
	}
	for _, bad := range []string{"", "abcdef", "12345", code + "0"} {
		if check(bad) {
			t.Fatalf("%q accepted", bad)
		}
	}
	e.clock.Advance(30 * time.Second)
	if !check(oathtool(t, secret, 6, 30, e.clock.Now())) {
		t.Fatal("the next code refused")
	}
}

// Of many requests spending one code at once, exactly one succeeds, on a real
// bolt file and a real Redis, whose UpdateUserIf refuses all but the first write.
func TestTOTPCheckConcurrentSpend(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	for name, st := range sharedStores(t, e) {
		t.Run(name, func(t *testing.T) {
			sc := mfaContext(t, e, st)
			secret := totpDevice(t, e, sc, 6, 30)
			e.clock.Advance(time.Minute)
			code := oathtool(t, secret, 6, 30, e.clock.Now())

			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, errs := 0, []error{}
			for range 16 {
				wg.Go(func() {
					dev, err := stages.CheckTOTP(ctx, sc, e.alice.ID, code)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					}
					if dev != nil {
						accepted++
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 || accepted != 1 {
				t.Fatalf("accepted %d times (want 1), errors %v", accepted, errs)
			}
		})
	}
}

// The setup page shows the QR image and the otpauth link intact: html/template
// replaces a URL it considers unsafe (a data: or otpauth: URL from data) with
// "#ZgotmplZ".
func TestTOTPSetupPage(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	ch, secret := totpSetup(t, newStage(t, "authenticator_totp", nil), sc)
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	if name := pages.StageTemplate("authenticator_totp"); name != "stage_authenticator_totp" {
		t.Fatalf("page template %s", name)
	}
	var buf bytes.Buffer
	if err := pages.Render(&buf, "stage_authenticator_totp", &templates.Page{FlowTitle: "Set up", Data: ch.Data,
		Fields: []templates.Field{{Key: "code", Type: "text", Label: "Code", Required: true}}}); err != nil {
		t.Fatal(err)
	}
	body := buf.String()
	attr := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in the page:\n%s", re, body)
		}
		return html.UnescapeString(m[1])
	}
	if src := attr(`<img src="([^"]*)"`); src != ch.Data["qr_png"] {
		t.Fatalf("img src %.60q…, want the challenge's qr_png", src)
	}
	if href := attr(`<a href="(otpauth:[^"]*)"`); href != ch.Data["otpauth_url"] {
		t.Fatalf("link %q, want %q", href, ch.Data["otpauth_url"])
	}
	if !strings.Contains(body, secret) || strings.Contains(body, "ZgotmplZ") {
		t.Fatalf("page:\n%s", body)
	}
}
