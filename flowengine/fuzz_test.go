package flowengine_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/flowgate/flowgate/flowengine"
)

// FuzzAnswer feeds arbitrary JSON answers to each stage of the default flow: an
// answer is either taken, refused with ErrInvalidAnswer, or answered with a
// challenge; it never panics and never logs anyone in without the password.
func FuzzAnswer(f *testing.F) {
	f.Add([]byte(`{"uid_field":"alice"}`), []byte(`{"password":"pw"}`))
	f.Add([]byte(`{"uid_field":["alice"]}`), []byte(`{}`))
	f.Add([]byte(`{"uid_field":"alice","extra":1}`), []byte(`{"password":null}`))
	f.Add([]byte(`null`), []byte(`{"password":true}`))
	e := newEnv(f, memoryStore, exampleBlueprint(f))
	e.addUser("alice", "pw")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, first, second []byte) {
		r := req("")
		res, err := e.engine.Start(ctx, "default-authentication", r)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range [][]byte{first, second} {
			var a map[string]any
			if json.Unmarshal(raw, &a) != nil {
				return
			}
			next, err := e.engine.Answer(ctx, res.ExecutionID, r, a)
			if err != nil {
				if !errors.Is(err, flowengine.ErrInvalidAnswer) && !errors.Is(err, flowengine.ErrExpired) {
					t.Fatalf("unexpected error: %v", err)
				}
				continue
			}
			if next.NewSession != nil && a["password"] != "pw" {
				t.Fatalf("logged in with %v", a)
			}
			if next.ExecutionID == "" {
				return
			}
			res = next
		}
	})
}
