package stages_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/stages"
	"github.com/flowgate/flowgate/flowengine/store/bolt"
)

// BenchmarkCheckTOTP is the cost of one TOTP answer: read the user, open the
// sealed secret, compute the codes of three steps, and spend the step with a
// compare-and-swap write — in memory, and on a bolt file (one fsync'd write).
// Each iteration also computes the code it types (one HMAC).
func BenchmarkCheckTOTP(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			e := newStageEnv(b)
			var store flowengine.Store
			if kind == "bolt" {
				st, err := bolt.Open(filepath.Join(b.TempDir(), "flowgate.db"), bolt.Options{Clock: e.clock, SweepInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				if err := st.CreateUser(ctx, e.alice); err != nil {
					b.Fatal(err)
				}
				store = st
			}
			sc := mfaContext(b, e, store)
			secret := totpDevice(b, e, sc, 6, 30)
			for b.Loop() {
				e.clock.Advance(30 * time.Second) // a new step: the last one is spent
				code, err := totp.GenerateCode(secret, e.clock.Now())
				if err != nil {
					b.Fatal(err)
				}
				if dev, err := stages.CheckTOTP(ctx, sc, e.alice.ID, code); err != nil || dev == nil {
					b.Fatalf("code refused: %v", err)
				}
			}
		})
	}
}
