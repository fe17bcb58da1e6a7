package flowengine_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/policies"
)

func compileRego(m map[string]string) (flowengine.PolicyEvaluator, error) {
	s, err := policies.Compile(m)
	if err != nil {
		return nil, err
	}
	return s, nil
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type env struct {
	t      testing.TB
	engine *flowengine.Engine
	store  flowengine.Store
	clock  *flowengine.ManualClock
}

type storeKind string

const (
	memoryStore storeKind = "memory"
	boltStore   storeKind = "bolt"
)

func newStore(t testing.TB, kind storeKind, clock flowengine.Clock) flowengine.Store {
	if kind == boltStore {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "flowgate.db"), bolt.Options{Clock: clock, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return memory.New(clock)
}

// newEnv builds an engine on a store with the given blueprint YAML applied.
func newEnv(t testing.TB, kind storeKind, yamlDocs ...string) *env {
	t.Helper()
	clock := flowengine.NewManualClock(t0)
	st := newStore(t, kind, clock)
	return newEnvOn(t, st, clock, yamlDocs...)
}

func newEnvOn(t testing.TB, st flowengine.Store, clock *flowengine.ManualClock, yamlDocs ...string) *env {
	t.Helper()
	e, err := flowengine.New(flowengine.Options{
		Store: st, Stages: stages.Types(), Policies: compileRego, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, doc := range yamlDocs {
		bp, err := blueprint.Parse("test"+string(rune('a'+i))+".yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := bp.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, engine: e, store: st, clock: clock}
}

func applyYAML(e *flowengine.Engine, doc string) error {
	bp, err := blueprint.Parse("test.yaml", []byte(doc))
	if err != nil {
		return err
	}
	return bp.Apply(context.Background(), e)
}

// lowCostHash is an argon2id hash cheap enough for tests and benchmarks.
func lowCostHash(password string) string {
	return flowengine.TestHash(password)
}

func (e *env) addUser(name, password string, groups ...string) *flowengine.User {
	e.t.Helper()
	u := &flowengine.User{ID: flowengine.NewID(), Username: name, Email: name + "@example.com", Name: strings.ToUpper(name),
		IsActive: true, PasswordHash: lowCostHash(password), Groups: groups}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func req(query string) *flowengine.Request {
	q, _ := url.ParseQuery(query)
	return &flowengine.Request{Method: "GET", Scheme: "https", Host: "app.example.com", Path: "/flows/x/", Query: q,
		Header: map[string][]string{"User-Agent": {"test-agent"}}, ClientIP: "192.0.2.7"}
}

func (e *env) start(slug string, r *flowengine.Request) *flowengine.Result {
	e.t.Helper()
	res, err := e.engine.Start(context.Background(), slug, r)
	if err != nil {
		e.t.Fatalf("start %s: %v", slug, err)
	}
	return res
}

func (e *env) answer(res *flowengine.Result, r *flowengine.Request, kv ...string) *flowengine.Result {
	e.t.Helper()
	a := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i]] = kv[i+1]
	}
	out, err := e.engine.Answer(context.Background(), res.ExecutionID, r, a)
	if err != nil {
		e.t.Fatalf("answer %v: %v", kv, err)
	}
	return out
}

func wantChallenge(t testing.TB, res *flowengine.Result, stageType string) {
	t.Helper()
	if res.Response.Type != flowengine.TypeChallenge || res.Response.Stage.Type != stageType {
		t.Fatalf("got %s (stage %q, message %q, to %q), want a %s challenge", res.Response.Type, res.Response.Stage.Type,
			res.Response.Message, res.Response.To, stageType)
	}
}
