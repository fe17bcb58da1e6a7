package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/flowengine"
)

// testUpdateUserIf: over an unchanged record UpdateUserIf is UpdateUser, with
// its indexes, its errors and its end of sessions on a deactivation.
func testUpdateUserIf(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	ctx := context.Background()
	fay := user("fay", "fay@example.com")
	must(t, s.CreateUser(ctx, fay))
	must(t, s.CreateUser(ctx, user("gil", "gil@example.com")))
	prev, err := s.GetUser(ctx, fay.ID)
	must(t, err)
	next := *prev
	next.Username, next.Email, next.LastLogin = "fay2", "fay2@example.com", clock.Now()
	must(t, s.UpdateUserIf(ctx, &next, prev))
	got, err := s.GetUserByUsername(ctx, "FAY2")
	must(t, err)
	if got.ID != fay.ID || !got.LastLogin.Equal(clock.Now()) || got.Name != "N fay" || got.Attributes["team"] != "docs" {
		t.Fatalf("after UpdateUserIf: %+v", got)
	}
	if _, err := s.GetUserByEmail(ctx, "fay@example.com"); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("old email still resolves: %v", err)
	}
	if byEmail, err := s.GetUserByEmail(ctx, "fay2@example.com"); err != nil || byEmail.ID != fay.ID {
		t.Fatalf("new email does not resolve: %v", err)
	}

	// A taken username is a conflict, as for UpdateUser, and changes nothing.
	prev = got
	taken := *prev
	taken.Username = "Gil"
	if err := s.UpdateUserIf(ctx, &taken, prev); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("UpdateUserIf onto a taken username: %v, want ErrConflict", err)
	}
	if got, err := s.GetUser(ctx, fay.ID); err != nil || got.Username != "fay2" {
		t.Fatalf("failed UpdateUserIf changed the user: %+v %v", got, err)
	}

	// Deactivating ends the user's sessions, as UpdateUser does.
	sess := session(fay.ID, clock.Now(), cachedTTL)
	must(t, s.CreateSession(ctx, sess))
	_, err = s.GetSession(ctx, sess.ID) // a caching store now holds it
	must(t, err)
	prev, err = s.GetUser(ctx, fay.ID)
	must(t, err)
	off := *prev
	off.IsActive = false
	must(t, s.UpdateUserIf(ctx, &off, prev))
	if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("a user deactivated by UpdateUserIf keeps a session: %v, want ErrNotFound", err)
	}

	ghost := user("ghost", "")
	if err := s.UpdateUserIf(ctx, ghost, ghost); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("UpdateUserIf of an unknown user: %v, want ErrNotFound", err)
	}
	prev, err = s.GetUser(ctx, fay.ID)
	must(t, err)
	must(t, s.DeleteUser(ctx, fay.ID))
	late := *prev
	late.LastLogin = clock.Now().Add(time.Minute)
	if err := s.UpdateUserIf(ctx, &late, prev); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("UpdateUserIf of a deleted user: %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, fay.ID); !errors.Is(err, flowengine.ErrNotFound) {
		t.Fatalf("UpdateUserIf brought a deleted user back: %v", err)
	}
}

// testUpdateUserIfStale: an operator's write landing between a login's read
// and its write is kept; the login's write is refused whole.
func testUpdateUserIfStale(t *testing.T, s flowengine.Store, clock *flowengine.ManualClock) {
	tests := []struct {
		name     string
		operator func(u *flowengine.User)
		kept     func(u *flowengine.User) bool
	}{
		{"deactivation", func(u *flowengine.User) { u.IsActive = false },
			func(u *flowengine.User) bool { return !u.IsActive }},
		{"new password", func(u *flowengine.User) { u.PasswordHash = "$2a$04$operator" },
			func(u *flowengine.User) bool { return u.PasswordHash == "$2a$04$operator" }},
		{"new email", func(u *flowengine.User) { u.Email = "moved@example.com" },
			func(u *flowengine.User) bool { return u.Email == "moved@example.com" }},
		{"new attribute", func(u *flowengine.User) { u.Attributes = map[string]any{"team": "ops"} },
			func(u *flowengine.User) bool { return u.Attributes["team"] == "ops" }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			u := user(fmt.Sprintf("hal%d", i), fmt.Sprintf("hal%d@example.com", i))
			u.PasswordHash = "$2a$04$seed"
			must(t, s.CreateUser(ctx, u))
			prev, err := s.GetUserByUsername(ctx, u.Username) // the login reads…
			must(t, err)
			op, err := s.GetUser(ctx, u.ID) // …the operator writes…
			must(t, err)
			tc.operator(op)
			must(t, s.UpdateUser(ctx, op))
			login := *prev // …and the login writes what it read, changed
			login.LastLogin, login.PasswordHash = clock.Now(), "$argon2id$login"
			if err := s.UpdateUserIf(ctx, &login, prev); !errors.Is(err, flowengine.ErrChanged) {
				t.Fatalf("UpdateUserIf over a changed user: %v, want ErrChanged", err)
			}
			got, err := s.GetUser(ctx, u.ID)
			must(t, err)
			if !tc.kept(got) || !got.LastLogin.IsZero() || got.PasswordHash == "$argon2id$login" {
				t.Fatalf("the operator's change was undone: %+v", got)
			}
		})
	}
}

// testConcurrentUpdateUserIf: of several writers that read the same record,
// exactly one writes; the others are told it changed.
func testConcurrentUpdateUserIf(t *testing.T, s flowengine.Store, _ *flowengine.ManualClock) {
	ctx := context.Background()
	u := user("ida", "ida@example.com")
	must(t, s.CreateUser(ctx, u))
	prev, err := s.GetUser(ctx, u.ID)
	must(t, err)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			next := *prev
			next.Name = fmt.Sprintf("writer %d", i)
			errs[i] = s.UpdateUserIf(ctx, &next, prev)
		}(i)
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both replaced the same record", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, flowengine.ErrChanged):
			t.Fatalf("writer %d: %v, want nil or ErrChanged", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer replaced the unchanged record")
	}
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	if want := fmt.Sprintf("writer %d", winner); got.Name != want {
		t.Fatalf("stored name %q, want the winner's %q", got.Name, want)
	}
}
