package blueprint_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/blueprint"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/memory"
	"github.com/flowgate/flowgate/policies"
)

// engineOn returns an engine on st, so a test can change users behind it the
// way `caddy flowgate user passwd` does.
func engineOn(t *testing.T, st flowengine.Store) *flowengine.Engine {
	t.Helper()
	e, err := flowengine.New(flowengine.Options{
		Store:  st,
		Stages: stages.Types(),
		Policies: func(m map[string]string) (flowengine.PolicyEvaluator, error) {
			s, err := policies.Compile(m)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const seedDoc = good + `users:
  - username: demo
    email: demo@example.com
    name: Demo User
    password_hash: "$2a$04$LF0NcTp28ZGAfBFMvX2TGeiovR67DOoGLwBfBj6d56eSZ3xiOcsiq"
    groups: [staff]
`

func mustApply(t *testing.T, e *flowengine.Engine, doc string) {
	t.Helper()
	if err := apply(e, doc); err != nil {
		t.Fatal(err)
	}
}

func demoUser(t *testing.T, st flowengine.Store) *flowengine.User {
	t.Helper()
	u, err := st.GetUserByUsername(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The security finding: re-applying the blueprint at every config load must not
// bring back an old password, reactivate a user or blank fields.
func TestSeedUserKeepsLaterChanges(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	e := engineOn(t, st)
	mustApply(t, e, seedDoc)
	u := demoUser(t, st)
	u.PasswordHash, u.Email, u.Groups, u.IsActive = "$2a$04$changedchangedchangedcO", "ops@example.com", []string{"ops"}, false
	if err := st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	mustApply(t, e, seedDoc)
	got := demoUser(t, st)
	if got.ID != u.ID || got.PasswordHash != u.PasswordHash || got.Email != "ops@example.com" ||
		!reflect.DeepEqual(got.Groups, []string{"ops"}) || got.IsActive {
		t.Fatalf("re-applied blueprint undid later changes: %+v", got)
	}

	// state: present with password_hash resets the password, and only that.
	reset := good + `users:
  - username: demo
    state: present
    password_hash: "$2a$04$LF0NcTp28ZGAfBFMvX2TGeiovR67DOoGLwBfBj6d56eSZ3xiOcsiq"
`
	mustApply(t, e, reset)
	got = demoUser(t, st)
	if got.PasswordHash != "$2a$04$LF0NcTp28ZGAfBFMvX2TGeiovR67DOoGLwBfBj6d56eSZ3xiOcsiq" {
		t.Fatalf("authoritative password_hash not applied: %q", got.PasswordHash)
	}
	if got.ID != u.ID || got.Email != "ops@example.com" || !reflect.DeepEqual(got.Groups, []string{"ops"}) || got.IsActive {
		t.Fatalf("authoritative password_hash changed other fields: %+v", got)
	}
}

// A partial authoritative seed overwrites what it names and keeps the rest.
func TestPartialAuthoritativeSeedKeepsOtherFields(t *testing.T) {
	st := memory.New(nil)
	e := engineOn(t, st)
	mustApply(t, e, seedDoc)
	before := demoUser(t, st)
	mustApply(t, e, "version: 1\nusers:\n  - {username: Demo, state: present, email: new@example.com}\n")
	got := demoUser(t, st)
	if got.Email != "new@example.com" {
		t.Fatalf("email not overwritten: %q", got.Email)
	}
	if got.ID != before.ID || got.Username != "demo" || got.Name != "Demo User" || !got.IsActive ||
		got.PasswordHash != before.PasswordHash || !reflect.DeepEqual(got.Groups, []string{"staff"}) {
		t.Fatalf("partial seed blanked other fields: %+v", got)
	}
}

// An authoritative is_active: false ends the user's sessions.
func TestAuthoritativeDeactivationEndsSessions(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	e := engineOn(t, st)
	mustApply(t, e, seedDoc)
	u := demoUser(t, st)
	sess := &flowengine.Session{ID: "s1", UserID: u.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	mustApply(t, e, "version: 1\nusers:\n  - {username: demo, state: present, is_active: false}\n")
	if got := demoUser(t, st); got.IsActive || got.Email != "demo@example.com" {
		t.Fatalf("after deactivation: %+v", got)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("session of a user deactivated by a blueprint: %v, want ErrNotFound", err)
	}
}

// Fields come from the keys the entry names, in YAML and in JSON alike; a
// seed without state has none and is not authoritative.
func TestSeedUserFields(t *testing.T) {
	cases := []struct {
		name, file, doc string
		auth            bool
		fields          []string
	}{
		{"yaml", "a.yaml", "version: 1\nusers:\n  - {username: a, state: present, groups: [x], email: a@example.com}\n",
			true, []string{"groups", "email"}},
		{"json", "a.json", `{"version": 1, "users": [{"state": "present", "username": "a", "is_active": false, "attributes": {"k": 1}}]}`,
			true, []string{"is_active", "attributes"}},
		{"named but empty", "a.yaml", "version: 1\nusers:\n  - {username: a, state: present, groups: []}\n",
			true, []string{"groups"}},
		{"created", "a.yaml", "version: 1\nusers:\n  - {username: a, state: created, email: a@example.com}\n", false, nil},
		{"no state", "a.yaml", "version: 1\nusers:\n  - {username: a, email: a@example.com}\n", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bp, err := blueprint.Parse(tc.file, []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(bp.Users) != 1 {
				t.Fatalf("%d users", len(bp.Users))
			}
			s := bp.Users[0]
			if s.Authoritative != tc.auth || !reflect.DeepEqual(s.Fields, tc.fields) {
				t.Fatalf("authoritative %v fields %q, want %v %q", s.Authoritative, s.Fields, tc.auth, tc.fields)
			}
		})
	}
}

// state: absent removes a flow; the entry needs only its slug.
func TestAbsentFlowRemoves(t *testing.T) {
	e := newEngine(t)
	mustApply(t, e, good)
	mustApply(t, e, "version: 1\nflows:\n  - {slug: auth, state: absent}\n  - {slug: never-existed, state: absent}\n")
	if _, err := e.Flow("auth"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("absent flow still there: %v", err)
	}
	if n := len(e.Config().Stages); n != 2 {
		t.Fatalf("removing a flow changed the stages: %d left", n)
	}
	// The stages it used may go now too, and a policy.
	mustApply(t, e, "version: 1\nstages:\n  - {name: id, state: absent}\n  - {name: login, state: absent}\npolicies:\n  - {name: staff-only, state: absent}\n")
	if c := e.Config(); len(c.Flows)+len(c.Stages)+len(c.Policies) != 0 {
		t.Fatalf("left after removing everything: %+v", c)
	}
}

// Removing a stage a remaining flow still uses is refused whole, naming the
// absent entry, and nothing of the file is applied.
func TestAbsentStageStillUsedRejected(t *testing.T) {
	st := memory.New(nil)
	e := engineOn(t, st)
	mustApply(t, e, good)
	doc := `version: 1
stages:
  - name: extra
    type: dummy
  - name: login
    state: absent
users:
  - {username: newcomer}
`
	err := apply(e, doc)
	if err == nil {
		t.Fatal("removing a stage in use was accepted")
	}
	if want := "bad.yaml:5: stage login: state: absent, but flow auth still uses it"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	c := e.Config()
	if len(c.Stages) != 2 || len(c.Flows) != 1 {
		t.Fatalf("part of the rejected file was applied: %+v", c)
	}
	if _, err := st.GetUserByUsername(context.Background(), "newcomer"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("seed user of the rejected file was created: %v", err)
	}
	// The same, with the flow removed in the same file, is fine.
	mustApply(t, e, doc+"flows:\n  - {slug: auth, state: absent}\n")
	if _, err := e.Flow("auth"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("flow not removed: %v", err)
	}
}

// Within a set, a later file overrides an earlier one either way.
func TestAbsentInLaterFileWins(t *testing.T) {
	parse := func(name, doc string) *blueprint.Blueprint {
		bp, err := blueprint.Parse(name, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return bp
	}
	defines := parse("10-defines.yaml", good)
	removes := parse("20-removes.yaml", "version: 1\nflows:\n  - {slug: auth, state: absent}\n")

	e := newEngine(t)
	if err := (blueprint.Set{defines, removes}).Apply(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Flow("auth"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a later absent entry did not remove an earlier file's flow: %v", err)
	}
	e = newEngine(t)
	if err := (blueprint.Set{removes, defines}).Apply(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Flow("auth"); err != nil {
		t.Fatalf("a later file did not bring back a flow an earlier one removed: %v", err)
	}
}

// Each wrong state is refused with file, line and entry.
func TestStateRejects(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"user absent", "version: 1\nusers:\n  - {username: a}\n  - {username: demo, state: absent}\n",
			"bad.yaml:4: user demo: state: absent is not supported for users; delete a user with caddy flowgate user delete"},
		{"unknown user state", "version: 1\nusers:\n  - {username: demo, state: gone}\n",
			`bad.yaml:3: user demo: state: unknown value "gone" (want one of created, present)`},
		{"unknown flow state", "version: 1\nflows:\n  - {slug: auth, state: created}\n",
			`bad.yaml:3: flow auth: state: unknown value "created" (want one of present, absent)`},
		{"unknown stage state", "version: 1\nstages:\n  - {name: s, type: dummy, state: deleted}\n",
			`bad.yaml:3: stage s: state: unknown value "deleted"`},
		{"absent twice", "version: 1\npolicies:\n  - {name: p, state: absent}\n  - {name: p, state: absent}\n",
			"bad.yaml:4: policy p: defined twice in this file"},
		{"absent without slug", "version: 1\nflows:\n  - {state: absent}\n", "flow: an entry has no name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			err := apply(e, tc.doc)
			if err == nil || !errors.Is(err, blueprint.ErrInvalid) {
				t.Fatalf("accepted or not ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Export never writes state; Convert keeps it, so the converted file means the same.
func TestStateExportAndConvert(t *testing.T) {
	doc := good + `  - {slug: old, state: absent}
users:
  - {username: demo, state: present, email: d@example.com, is_active: true}
  - {username: other, email: o@example.com}
`
	e := newEngine(t)
	mustApply(t, e, doc)
	for _, format := range []blueprint.Format{blueprint.YAML, blueprint.JSON} {
		out, err := blueprint.Export(e.Config(), format)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "state") {
			t.Fatalf("export wrote state:\n%s", out)
		}
		conv, err := blueprint.Convert("a.yaml", []byte(doc), format)
		if err != nil {
			t.Fatal(err)
		}
		bp, err := blueprint.Parse("conv."+string(format), conv)
		if err != nil {
			t.Fatalf("converted file does not parse: %v\n%s", err, conv)
		}
		orig, _ := blueprint.Parse("a.yaml", []byte(doc))
		if !reflect.DeepEqual(bp.Remove, orig.Remove) || !reflect.DeepEqual(bp.Users, orig.Users) {
			t.Fatalf("convert to %s changed meaning: remove %+v users %+v\n%s", format, bp.Remove, bp.Users, conv)
		}
	}
}

// Seed users follow the same username and email rules as the admin API, so a
// seeded account can always be managed there.
func TestSeedUserNamesChecked(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"slash", `{username: "ops/admin"}`, "user ops/admin"},
		{"control", `{username: "a\u0007b"}`, "username"},
		{"bad email", `{username: ok, email: "not an email"}`, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := blueprint.Parse("u.yaml", []byte("version: 1\nusers:\n  - "+tc.entry+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "u.yaml:3") {
				t.Fatalf("got %v, want an error at u.yaml:3 mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := blueprint.Parse("u.yaml", []byte("version: 1\nusers:\n  - {username: \"jane.doe@example.com\", email: jane@example.com}\n")); err != nil {
		t.Fatalf("an email as username: %v", err)
	}
}
