package flowengine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine"
)

// Tests written as the attacker of the security review would try: parallel
// guesses, aliases, a planted execution, an erroring policy.

const lockMessage = "Too many failed attempts. Try again later."

func regulatedBolt(t *testing.T) (*env, *flowengine.CounterRegulator) {
	return regulatedOn(t, boltStore)
}

// identified starts the default flow and answers identification with uid.
func identified(e *env, uid string) *flowengine.Result {
	r := req("")
	res := e.start("default-authentication", r)
	return e.answer(res, r, "uid_field", uid)
}

// Finding 3: twenty wrong passwords sent at once for one account, each on its
// own execution, must not all be checked: the attempt is reserved before
// hashing, so at most five are, and the account ends locked (the right password
// is refused afterwards).
func TestParallelGuessesAcrossExecutions(t *testing.T) {
	e, _ := regulatedBolt(t)
	e.addUser("vic", "right")
	const n = 20
	execs := make([]*flowengine.Result, n)
	for i := range execs {
		execs[i] = identified(e, "vic")
	}
	type outcome struct {
		res *flowengine.Result
		err error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range execs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.engine.Answer(context.Background(), execs[i].ExecutionID, req(""), map[string]any{"password": "wrong"})
			out[i] = outcome{res, err}
		}()
	}
	wg.Wait()
	checked, refused := 0, 0
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("answer %d: %v", i, o.err)
		}
		msgs := strings.Join(o.res.Response.Messages, " ")
		switch {
		case strings.Contains(msgs, lockMessage):
			refused++
		case len(o.res.Response.Errors["password"]) > 0:
			checked++
		default:
			t.Fatalf("answer %d: unexpected %+v", i, o.res.Response)
		}
	}
	if checked > flowengine.DefaultUserFailures || refused != n-checked {
		t.Fatalf("%d passwords checked, %d refused; want at most %d checked", checked, refused, flowengine.DefaultUserFailures)
	}
	res := e.answer(identified(e, "vic"), req(""), "password", "right")
	if res.NewSession != nil || !strings.Contains(strings.Join(res.Response.Messages, " "), lockMessage) {
		t.Fatalf("the right password after the parallel guesses: %+v", res.Response)
	}
}

// Finding 3, second half: parallel answers to one execution are serialised and
// every answer retires the handle it came with, so exactly one is processed.
func TestParallelAnswersToOneExecution(t *testing.T) {
	e, _ := regulatedBolt(t)
	e.addUser("vic", "right")
	res := identified(e, "vic")
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	processed, busy, gone := 0, 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.engine.Answer(context.Background(), res.ExecutionID, req(""), map[string]any{"password": "wrong"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				processed++
			case errors.Is(err, flowengine.ErrBusy):
				busy++
			case errors.Is(err, flowengine.ErrExpired):
				gone++
			default:
				t.Errorf("answer: %v", err)
			}
		}()
	}
	wg.Wait()
	if processed != 1 || busy+gone != n-1 {
		t.Fatalf("processed %d, busy %d, expired %d; want exactly one processed", processed, busy, gone)
	}
}

// Finding 4: the username, the email and other spellings of one account share
// one counter, and unlock clears every alias.
func TestAliasesShareOneLock(t *testing.T) {
	e, reg := regulatedBolt(t)
	vic := e.addUser("vic", "right")
	for _, uid := range []string{"vic", "VIC", "vic@example.com", "Vic@Example.com", " vic "} {
		res := e.answer(identified(e, uid), req(""), "password", "wrong")
		if len(res.Response.Errors["password"]) == 0 {
			t.Fatalf("%q: wrong password not reported: %+v", uid, res.Response)
		}
	}
	for _, uid := range []string{"vic", "vic@example.com"} {
		res := e.answer(identified(e, uid), req(""), "password", "right")
		if res.NewSession != nil || !strings.Contains(strings.Join(res.Response.Messages, " "), lockMessage) {
			t.Fatalf("%q after five failures over aliases: %+v", uid, res.Response)
		}
	}
	if err := reg.Unlock(context.Background(), vic); err != nil {
		t.Fatal(err)
	}
	if res := e.answer(identified(e, "vic@example.com"), req(""), "password", "right"); res.NewSession == nil {
		t.Fatalf("unlock did not clear the email alias: %+v", res.Response)
	}
	// Unknown names are counted by their normalised form: case and width variants
	// of one name cannot each be tried five times.
	for _, uid := range []string{"ghost", "GHOST", "Ghost", "ｇｈｏｓｔ", "gHoSt"} {
		e.answer(identified(e, uid), req(""), "password", "x")
	}
	res := e.answer(identified(e, "ghost"), req(""), "password", "x")
	if !strings.Contains(strings.Join(res.Response.Messages, " "), lockMessage) {
		t.Fatalf("unknown name variants counted apart: %+v", res.Response)
	}
}

const rememberFlow = `
version: 1
stages:
  - {name: fx-id, type: identification}
  - {name: fx-pw, type: password}
  - {name: fx-login, type: user_login, config: {remember_me_offset: 720h}}
flows:
  - slug: fx-login
    name: Fixation
    designation: authentication
    stages:
      - {stage: fx-id, order: 10}
      - {stage: fx-pw, order: 20}
      - {stage: fx-login, order: 30}
`

// Finding 5: an attacker who plants their execution in the victim's browser
// cannot finish the flow the victim identified and typed a password into.
// ("Stay signed in" is answered on the password page, so the last step is the
// password: the handles are tried there.)
func TestFlowFixation(t *testing.T) {
	e := newEnv(t, boltStore, rememberFlow)
	victim := e.addUser("victim", "secret")
	ctx := context.Background()

	planted := e.start("fx-login", req("")).ExecutionID
	// The victim's browser carries the planted handle and identifies.
	afterID, err := e.engine.Answer(ctx, planted, req(""), map[string]any{"uid_field": "victim"})
	if err != nil {
		t.Fatal(err)
	}
	if afterID.ExecutionID == planted || afterID.ExecutionID == "" {
		t.Fatal("identifying did not move the execution to a new handle")
	}
	if _, err := e.engine.Resume(ctx, planted, req("")); !errors.Is(err, flowengine.ErrExpired) {
		t.Fatalf("planted handle still continues the flow after identification: %v", err)
	}
	// A mistyped password: the retry moves the execution on too.
	retry, err := e.engine.Answer(ctx, afterID.ExecutionID, req(""), map[string]any{"password": "typo"})
	if err != nil {
		t.Fatal(err)
	}
	wantChallenge(t, retry, "password")
	answer := map[string]any{"password": "secret", "remember_me": "true"}
	for name, h := range map[string]string{
		"planted":              planted,
		"after identification": afterID.ExecutionID,
		"id without secret":    strings.SplitN(retry.ExecutionID, ".", 2)[0],
		"id with wrong secret": strings.SplitN(retry.ExecutionID, ".", 2)[0] + ".AAAA",
	} {
		res, err := e.engine.Answer(ctx, h, req(""), answer)
		if !errors.Is(err, flowengine.ErrExpired) || (res != nil && res.NewSession != nil) {
			t.Fatalf("%s handle: %v, session %v", name, err, res != nil && res.NewSession != nil)
		}
	}
	done, err := e.engine.Answer(ctx, retry.ExecutionID, req(""), answer)
	if err != nil || done.NewSession == nil || done.NewSession.UserID != victim.ID || !done.NewSession.Persistent {
		t.Fatalf("the victim's own handle: %v %+v", err, done)
	}
}

const failingPolicyFlow = `
version: 1
policies:
  - name: slow
    rego: |
      package flowgate.slow
      import rego.v1
      allow if input.user.authenticated
stages:
  - {name: pe-id, type: identification}
  - {name: pe-pw, type: password}
  - {name: pe-deny, type: deny, config: {deny_message: "staff only"}}
  - {name: pe-login, type: user_login}
flows:
  - slug: pe-login
    name: Policy error
    designation: authentication
    stages:
      - {stage: pe-id, order: 10}
      - {stage: pe-pw, order: 20}
      - stage: pe-deny
        order: 30
        policies: [BINDING]
      - {stage: pe-login, order: 40}
`

// Finding 7: a policy that errors (here: times out) on a deny stage's binding
// must not skip the deny; only an explicit failure_result decides otherwise.
func TestPolicyErrorOnDenyStage(t *testing.T) {
	for _, tc := range []struct {
		name, binding string
		want          string // denied message, or "" for a login
	}{
		{"no failure_result stops", "{policy: slow, timeout: 1ns}", flowengine.UnavailableMessage},
		{"negate does not flip an error", "{policy: slow, timeout: 1ns, negate: true}", flowengine.UnavailableMessage},
		{"explicit true runs the deny", "{policy: slow, timeout: 1ns, failure_result: true}", "staff only"},
		{"explicit false skips the stage", "{policy: slow, timeout: 1ns, failure_result: false}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, memoryStore, strings.Replace(failingPolicyFlow, "BINDING", tc.binding, 1))
			e.addUser("eve", "pw")
			r := req("")
			res := e.answer(e.answer(e.start("pe-login", r), r, "uid_field", "eve"), r, "password", "pw")
			if tc.want == "" {
				if res.NewSession == nil {
					t.Fatalf("explicit failure_result false: %+v", res.Response)
				}
				return
			}
			if res.NewSession != nil || res.Response.Type != flowengine.TypeDenied || res.Response.Message != tc.want {
				t.Fatalf("got %+v (session %v), want denied %q", res.Response, res.NewSession != nil, tc.want)
			}
		})
	}
}

// Finding 7 at flow selection: an erroring flow policy stops the selection
// instead of falling through to the next flow.
func TestPolicyErrorStopsFlowSelection(t *testing.T) {
	doc := strings.Replace(failingPolicyFlow, "policies: [BINDING]", "policies: []", 1)
	doc = strings.Replace(doc, "    designation: authentication\n", "    designation: authentication\n    order: -1\n    policies: [{policy: slow, timeout: 1ns}]\n", 1)
	e := newEnv(t, memoryStore, exampleBlueprint(t), doc)
	if _, err := e.engine.FindFlow(context.Background(), flowengine.DesignationAuthentication, req("")); !errors.Is(err, flowengine.ErrPolicyFailed) {
		t.Fatalf("FindFlow with an erroring first flow: %v, want ErrPolicyFailed", err)
	}
	res := e.start("pe-login", req(""))
	if res.Response.Type != flowengine.TypeDenied || res.Response.Message != flowengine.UnavailableMessage {
		t.Fatalf("starting the flow: %+v", res.Response)
	}
}

// Finding 2: a session records the flow that created it, and policies see it.
func TestSessionRecordsItsFlow(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t), `
version: 1
policies:
  - name: via-default
    rego: |
      package flowgate.via_default
      import rego.v1
      allow if input.session.flow == "default-authentication"
`)
	e.addUser("sam", "pw")
	r := req("")
	res := e.answer(e.answer(e.start("default-authentication", r), r, "uid_field", "sam"), r, "password", "pw")
	if res.NewSession == nil || res.NewSession.Flow != "default-authentication" {
		t.Fatalf("session flow: %+v", res.NewSession)
	}
	stored, err := e.store.GetSession(context.Background(), res.NewSession.ID)
	if err != nil || stored.Flow != "default-authentication" {
		t.Fatalf("stored session: %+v %v", stored, err)
	}
	u, _ := e.store.GetUserByUsername(context.Background(), "sam")
	in := req("")
	in.Session, in.User = stored, u
	if d := e.engine.Authorize(context.Background(), "via-default", in); !d.Passed {
		t.Fatalf("input.session.flow not seen: %+v", d)
	}
	in.Session = &flowengine.Session{Flow: "other"}
	if d := e.engine.Authorize(context.Background(), "via-default", in); d.Passed {
		t.Fatal("policy passed for a session of another flow")
	}
}

// Finding 1: a built-in flow never outranks an operator's flow of the same
// designation, whatever their order fields say; flows can be deleted.
func TestBuiltInNeverOutranks(t *testing.T) {
	e := newEnv(t, memoryStore, rememberFlow)
	ctx := context.Background()
	cfg := e.engine.Config()
	builtIn := flowengine.Flow{Slug: "aaa-builtin", Name: "B", Title: "B", Designation: flowengine.DesignationAuthentication,
		Order: -100, BuiltIn: true, Stages: cfg.Flows[0].Stages}
	if err := e.engine.Apply(ctx, flowengine.Change{Config: &flowengine.Config{Flows: []flowengine.Flow{builtIn}}}); err != nil {
		t.Fatal(err)
	}
	f, err := e.engine.FindFlow(ctx, flowengine.DesignationAuthentication, req(""))
	if err != nil || f.Slug != "fx-login" {
		t.Fatalf("FindFlow chose %v (%v), want the operator's fx-login", f, err)
	}
	if err := e.engine.DeleteFlow(ctx, "fx-login"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Flow("fx-login"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted flow still there: %v", err)
	}
	if err := e.engine.DeleteFlow(ctx, "fx-login"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleting a missing flow: %v", err)
	}
	// The deletion was stored, not only made live.
	again := newEnvOn(t, e.store, e.clock)
	if _, err := again.engine.Flow("fx-login"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("deleted flow came back after a reload: %v", err)
	}
}

// Finding 8, second half: a user with a non-default hash (here bcrypt) is moved
// to the default argon2id hash at their next successful login, so the account
// stops standing out by how long a wrong password takes.
func TestLoginUpgradesHash(t *testing.T) {
	e := newEnv(t, boltStore, exampleBlueprint(t))
	ctx := context.Background()
	u := &flowengine.User{ID: flowengine.NewID(), Username: "old", IsActive: true}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	u.PasswordHash = string(bc)
	if err := e.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	r := req("")
	res := e.answer(e.answer(e.start("default-authentication", r), r, "uid_field", "old"), r, "password", "pw")
	if res.NewSession == nil {
		t.Fatalf("login: %+v", res.Response)
	}
	stored, err := e.store.GetUser(ctx, u.ID)
	if err != nil || flowengine.NeedsRehash(stored.PasswordHash) || !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after login: %q %v", stored.PasswordHash, err)
	}
	if ok, _ := flowengine.VerifyPassword(stored.PasswordHash, "pw"); !ok {
		t.Fatal("the upgraded hash does not verify the password")
	}
}

// A site policy sees the session's auth methods as input.user.auth_methods,
// as a flow's policies see the plan's, so `"otp" in input.user.auth_methods`
// can demand a second factor on a route.
func TestAuthorizeSeesSessionAuthMethods(t *testing.T) {
	e := newEnv(t, memoryStore, exampleBlueprint(t), `
version: 1
policies:
  - name: needs-otp
    rego: |
      package flowgate.needs_otp
      import rego.v1
      allow if "otp" in input.user.auth_methods
`)
	e.addUser("sam", "pw")
	u, _ := e.store.GetUserByUsername(context.Background(), "sam")
	in := req("")
	in.User = u
	in.Session = &flowengine.Session{UserID: u.ID, AuthMethods: []string{flowengine.MethodPassword}}
	if d := e.engine.Authorize(context.Background(), "needs-otp", in); d.Passed {
		t.Fatal("a password-only session passed a policy that needs otp")
	}
	in.Session.AuthMethods = []string{flowengine.MethodPassword, flowengine.MethodOTP}
	if d := e.engine.Authorize(context.Background(), "needs-otp", in); !d.Passed {
		t.Fatalf("a session with otp was refused: %+v", d)
	}
}
