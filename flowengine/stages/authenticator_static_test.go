package stages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/templates"
)

func TestStaticConfig(t *testing.T) {
	checkConfigs(t, "authenticator_static", []configCase{
		{"defaults", nil, ""},
		{"authentik export", map[string]any{"token_count": 6, "token_length": 16, "friendly_name": "Backup", "configure_flow": "x"}, ""},
		{"too many", map[string]any{"token_count": 1000}, "token_count"},
		{"negative count", map[string]any{"token_count": -1}, "token_count"},
		{"too short", map[string]any{"token_length": 4}, "token_length"},
		{"too long", map[string]any{"token_length": 500}, "token_length"},
		{"count as text", map[string]any{"token_count": "ten"}, `"token_count"`},
		{"unknown key", map[string]any{"digits": 6}, `unknown config key "digits"`},
	})
}

// staticCodes shows the challenge and returns the codes it shows.
func staticCodes(t *testing.T, s flowengine.Stage, sc *flowengine.StageContext) []string {
	t.Helper()
	ch, err := s.Challenge(context.Background(), sc)
	if err != nil || ch == nil {
		t.Fatalf("challenge %v, %v", ch, err)
	}
	f := ch.Fields
	if len(f) != 1 || f[0].Key != "confirm" || f[0].Type != flowengine.FieldCheckbox || !f[0].Required {
		t.Fatalf("fields %+v", f)
	}
	codes, _ := ch.Data["codes"].([]string)
	return codes
}

func staticDevices(t *testing.T, s flowengine.UserStore, id string) []flowengine.Device {
	t.Helper()
	u, err := s.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.DevicesOf(flowengine.DeviceStatic)
}

// staticSetup makes alice recovery codes through the stage and returns them.
func staticSetup(t *testing.T, sc *flowengine.StageContext, config map[string]any) []string {
	t.Helper()
	s := newStage(t, "authenticator_static", config)
	codes := staticCodes(t, s, sc)
	out, err := s.Submit(context.Background(), sc, flowengine.Answer{"confirm": "true"})
	if err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("confirm: %+v, %v", out, err)
	}
	return codes
}

func TestStaticSetup(t *testing.T) {
	for _, sealed := range []bool{true, false} {
		name := "sealed"
		if !sealed {
			name = "without secrets"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newStageEnv(t)
			sc := mfaContext(t, e, nil)
			if !sealed {
				sc.Services.Secrets = nil
			}
			s := newStage(t, "authenticator_static", map[string]any{"token_count": 6, "token_length": 10})
			codes := staticCodes(t, s, sc)
			if len(codes) != 6 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 6 {
				t.Fatalf("codes %v: want 6 different ones", codes)
			}
			for _, c := range codes {
				if len(c) != 10 || strings.ToLower(c) != c {
					t.Fatalf("code %q", c)
				}
			}
			// Shown once per execution: the page shows the same codes again,
			// also after the state's JSON round trip.
			raw, _ := json.Marshal(sc.State)
			if sealed && bytes.Contains(raw, []byte(codes[0])) {
				t.Fatalf("state holds the codes in the clear: %s", raw)
			}
			sc.State = map[string]any{}
			if err := json.Unmarshal(raw, &sc.State); err != nil {
				t.Fatal(err)
			}
			if again := staticCodes(t, s, sc); !slices.Equal(again, codes) {
				t.Fatalf("second challenge showed %v, first %v", again, codes)
			}

			// Not confirmed: nothing saved.
			out, err := s.Submit(ctx, sc, flowengine.Answer{"confirm": "false"})
			if err != nil || out.Kind != flowengine.OutcomeInvalid || len(out.Errors["confirm"]) == 0 {
				t.Fatalf("unconfirmed: %+v, %v", out, err)
			}
			if d := staticDevices(t, e.store, e.alice.ID); len(d) != 0 {
				t.Fatalf("saved unconfirmed: %+v", d)
			}

			out, err = s.Submit(ctx, sc, flowengine.Answer{"confirm": "true"})
			if err != nil || out.Kind != flowengine.OutcomeContinue {
				t.Fatalf("confirmed: %+v, %v", out, err)
			}
			if len(sc.AuthMethods()) != 0 {
				t.Fatalf("showing codes recorded auth methods %v", sc.AuthMethods())
			}
			devs := staticDevices(t, e.store, e.alice.ID)
			if len(devs) != 1 || devs[0].Name != "Recovery codes" || len(devs[0].Static.Codes) != 6 || devs[0].Static.Salt == "" {
				t.Fatalf("devices %+v", devs)
			}
			u, _ := e.store.GetUser(ctx, e.alice.ID)
			stored, _ := json.Marshal(u)
			for _, c := range codes {
				if bytes.Contains(stored, []byte(c)) {
					t.Fatalf("stored user holds code %q in the clear", c)
				}
			}
		})
	}
}

func TestStaticCheck(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	codes := staticSetup(t, sc, nil)
	check := func(code string) *flowengine.Device {
		t.Helper()
		dev, err := stages.CheckStatic(ctx, sc, e.alice.ID, code)
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}
	for _, bad := range []string{"", "-", "nope", codes[0] + "x", codes[0][1:]} {
		if check(bad) != nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	e.clock.Advance(time.Hour)
	// Typed in capitals, grouped with a dash and a space.
	typed := strings.ToUpper(codes[0][:4]) + "-" + codes[0][4:8] + " " + codes[0][8:]
	dev := check(typed)
	if dev == nil {
		t.Fatalf("code %q refused", typed)
	}
	if len(dev.Static.Codes) != len(codes)-1 || !dev.LastUsed.Equal(e.clock.Now()) {
		t.Fatalf("device after use: %d codes, last used %v", len(dev.Static.Codes), dev.LastUsed)
	}
	if check(codes[0]) != nil {
		t.Fatal("a code worked twice")
	}
	if check(codes[1]) == nil {
		t.Fatal("another code refused")
	}
	if d := staticDevices(t, e.store, e.alice.ID); len(d[0].Static.Codes) != len(codes)-2 {
		t.Fatalf("stored %d codes, want %d", len(d[0].Static.Codes), len(codes)-2)
	}
}

func TestStaticCheckLastCodeKeepsDevice(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	codes := staticSetup(t, sc, map[string]any{"token_count": 1})
	if dev, err := stages.CheckStatic(ctx, sc, e.alice.ID, codes[0]); err != nil || dev == nil {
		t.Fatalf("%v, %v", dev, err)
	}
	// An empty device still says the user has recovery codes set up, so a
	// validate stage does not take them for a user without a second factor.
	if d := staticDevices(t, e.store, e.alice.ID); len(d) != 1 || len(d[0].Static.Codes) != 0 {
		t.Fatalf("devices %+v", d)
	}
}

func TestStaticNewCodesReplaceOld(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	old := staticSetup(t, sc, nil)
	first := staticDevices(t, e.store, e.alice.ID)[0]
	// Another execution (the state is per execution).
	sc = mfaContext(t, e, nil)
	fresh := staticSetup(t, sc, nil)
	if slices.Equal(old, fresh) {
		t.Fatal("the same codes were made twice")
	}
	devs := staticDevices(t, e.store, e.alice.ID)
	if len(devs) != 1 || devs[0].ID == first.ID {
		t.Fatalf("devices %+v: want only the new one", devs)
	}
	if dev, _ := stages.CheckStatic(ctx, sc, e.alice.ID, old[0]); dev != nil {
		t.Fatal("an old code still works")
	}
	if dev, _ := stages.CheckStatic(ctx, sc, e.alice.ID, fresh[0]); dev == nil {
		t.Fatal("a new code does not work")
	}
}

// Other devices of the user survive new recovery codes.
func TestStaticKeepsOtherDevices(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	totpDevice(t, e, sc, 6, 30)
	staticSetup(t, mfaContext(t, e, nil), nil)
	staticSetup(t, mfaContext(t, e, nil), nil)
	u, err := e.store.GetUser(context.Background(), e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.DevicesOf(flowengine.DeviceTOTP)) != 1 || len(u.DevicesOf(flowengine.DeviceStatic)) != 1 {
		t.Fatalf("devices %+v", u.Devices)
	}
}

func TestStaticNeedsPendingUser(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	s := newStage(t, "authenticator_static", nil)
	sc := mfaContext(t, e, nil)
	delete(sc.Context, flowengine.CtxPendingUser)
	if ch, err := s.Challenge(ctx, sc); ch != nil || err != nil {
		t.Fatalf("challenge %v, %v", ch, err)
	}
	out, err := s.Submit(ctx, sc, flowengine.Answer{"confirm": "true"})
	if err != nil || out.Kind != flowengine.OutcomeDeny || len(out.Messages) == 0 {
		t.Fatalf("outcome %+v, %v", out, err)
	}

	// A pending user deleted meanwhile.
	sc = mfaContext(t, e, nil)
	staticCodes(t, s, sc)
	if err := e.store.DeleteUser(ctx, e.alice.ID); err != nil {
		t.Fatal(err)
	}
	out, err = s.Submit(ctx, sc, flowengine.Answer{"confirm": "true"})
	if err != nil || out.Kind != flowengine.OutcomeDeny {
		t.Fatalf("deleted user: %+v, %v", out, err)
	}
}

// Of many requests spending one recovery code at once, exactly one succeeds.
func TestStaticCheckConcurrentSpend(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	for name, st := range sharedStores(t, e) {
		t.Run(name, func(t *testing.T) {
			sc := mfaContext(t, e, st)
			codes := staticSetup(t, sc, nil)

			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, errs := 0, []error{}
			for range 16 {
				wg.Go(func() {
					dev, err := stages.CheckStatic(ctx, sc, e.alice.ID, codes[3])
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
			if d := staticDevices(t, st, e.alice.ID); len(d[0].Static.Codes) != len(codes)-1 {
				t.Fatalf("%d codes left, want %d", len(d[0].Static.Codes), len(codes)-1)
			}
		})
	}
}

// A confirmation of codes that were never shown (no challenge in this
// execution) saves nothing and shows codes; confirming those saves them.
func TestStaticConfirmBeforeShown(t *testing.T) {
	ctx := context.Background()
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_static", nil)
	out, err := s.Submit(ctx, sc, flowengine.Answer{"confirm": "true"})
	if err != nil || out.Kind != flowengine.OutcomeInvalid {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if d := staticDevices(t, e.store, e.alice.ID); len(d) != 0 {
		t.Fatalf("saved codes never shown: %+v", d)
	}
	codes := staticCodes(t, s, sc)
	if out, err := s.Submit(ctx, sc, flowengine.Answer{"confirm": "true"}); err != nil || out.Kind != flowengine.OutcomeContinue {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if dev, err := stages.CheckStatic(ctx, sc, e.alice.ID, codes[0]); err != nil || dev == nil {
		t.Fatalf("a shown code does not work: %v, %v", dev, err)
	}
}

func TestStaticSetupPage(t *testing.T) {
	e := newStageEnv(t)
	sc := mfaContext(t, e, nil)
	s := newStage(t, "authenticator_static", nil)
	codes := staticCodes(t, s, sc)
	ch, _ := s.Challenge(context.Background(), sc)
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	if name := pages.StageTemplate("authenticator_static"); name != "stage_authenticator_static" {
		t.Fatalf("page template %s", name)
	}
	var buf bytes.Buffer
	if err := pages.Render(&buf, "stage_authenticator_static", &templates.Page{FlowTitle: "Set up", Data: ch.Data,
		Fields: []templates.Field{{Key: "confirm", Type: "checkbox", Label: "Saved", Required: true}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if !strings.Contains(buf.String(), "<code>"+c+"</code>") {
			t.Fatalf("code %s not on the page:\n%s", c, buf.String())
		}
	}
}
