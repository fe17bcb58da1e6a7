package flowengine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
)

func regulatedEnv(t *testing.T) (*env, *flowengine.CounterRegulator) {
	return regulatedOn(t, memoryStore)
}

// regulatedOn is the example flows with brute-force regulation on a store of
// that kind (bolt: a real file, whose counters are atomic increments).
func regulatedOn(t *testing.T, kind storeKind) (*env, *flowengine.CounterRegulator) {
	clock := flowengine.NewManualClock(t0)
	st := newStore(t, kind, clock)
	reg := flowengine.NewRegulator(st)
	e, err := flowengine.New(flowengine.Options{Store: st, Stages: stages.Types(), Policies: compileRego, Clock: clock,
		Services: flowengine.Services{Regulator: reg}})
	if err != nil {
		t.Fatal(err)
	}
	env := &env{t: t, engine: e, store: st, clock: clock}
	if err := applyYAML(e, exampleBlueprint(t)); err != nil {
		t.Fatal(err)
	}
	return env, reg
}

func tryLogin(e *env, user, pw, ip string) *flowengine.Result {
	r := req("")
	r.ClientIP = ip
	res := e.start("default-authentication", r)
	res = e.answer(res, r, "uid_field", user)
	return e.answer(res, r, "password", pw)
}

func TestBruteForceLocksUsername(t *testing.T) {
	e, reg := regulatedEnv(t)
	e.addUser("vic", "right")
	for i := 0; i < 5; i++ {
		tryLogin(e, "vic", "wrong", "192.0.2.1")
	}
	// Locked: the right password is refused too, with a message, challenge kept.
	res := tryLogin(e, "vic", "right", "192.0.2.2")
	if res.NewSession != nil || res.Response.Type != flowengine.TypeChallenge || !strings.Contains(strings.Join(res.Response.Messages, " "), "Too many failed attempts") {
		t.Fatalf("locked account: %+v", res.Response)
	}
	// An unknown username gets the very same answer.
	for i := 0; i < 5; i++ {
		tryLogin(e, "ghost", "x", "192.0.2.3")
	}
	ghost := tryLogin(e, "ghost", "x", "192.0.2.3")
	if strings.Join(ghost.Response.Messages, " ") != strings.Join(res.Response.Messages, " ") {
		t.Fatalf("unknown user answered differently: %v vs %v", ghost.Response.Messages, res.Response.Messages)
	}
	e.clock.Advance(5*time.Minute + time.Second)
	if res := tryLogin(e, "vic", "right", "192.0.2.2"); res.NewSession == nil {
		t.Fatal("lock did not end after 5 minutes")
	}
	// A second lock lasts twice as long.
	for i := 0; i < 5; i++ {
		tryLogin(e, "vic", "wrong", "192.0.2.1")
	}
	e.clock.Advance(5*time.Minute + time.Second)
	if res := tryLogin(e, "vic", "right", "192.0.2.2"); res.NewSession != nil {
		t.Fatal("second lock was not doubled")
	}
	vic, err := e.store.GetUserByUsername(context.Background(), "VIC")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Unlock(context.Background(), vic); err != nil {
		t.Fatal(err)
	}
	if res := tryLogin(e, "vic", "right", "192.0.2.2"); res.NewSession == nil {
		t.Fatal("unlock did not lift the lock")
	}
}

func TestBruteForceLocksIP(t *testing.T) {
	e, _ := regulatedEnv(t)
	e.addUser("wes", "right")
	for i := 0; i < 50; i++ {
		tryLogin(e, "user"+string(rune('a'+i%26))+string(rune('a'+i/26)), "x", "198.51.100.9")
	}
	if res := tryLogin(e, "wes", "right", "198.51.100.9"); res.NewSession != nil {
		t.Fatal("50 failures from one IP did not lock it")
	}
	if res := tryLogin(e, "wes", "right", "198.51.100.10"); res.NewSession == nil {
		t.Fatal("another IP was locked too")
	}
}
