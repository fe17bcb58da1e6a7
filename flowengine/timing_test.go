package flowengine_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine"
)

// TestTimingUnknownUserCostsLikeKnown answers the username-enumeration threat: a
// wrong password for an unknown or inactive user (DummyVerify) must take as long
// as one for a known user with a default hash, whatever hashes were verified
// before. Each sample follows a verification of a non-default hash (bcrypt, or
// argon2id with other parameters), so a dummy that copied the last hash seen
// would cost what those cost.
func TestTimingUnknownUserCostsLikeKnown(t *testing.T) {
	if testing.Short() {
		t.Skip("measures argon2id timings (a few seconds)")
	}
	known, err := flowengine.HashPassword("right-password")
	if err != nil {
		t.Fatal(err)
	}
	bcrypt10, _ := bcrypt.GenerateFromPassword([]byte("other"), 10)
	bcrypt4, _ := bcrypt.GenerateFromPassword([]byte("other"), bcrypt.MinCost)
	// Non-default argon2id parameters: cheap and dear, one thread and two.
	cheapArgon := "$argon2id$v=19$m=8192,t=1,p=1$Zmxvd2dhdGUtdGVzdC1zYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	dearArgon := "$argon2id$v=19$m=65536,t=2,p=2$Zmxvd2dhdGUtdGVzdC1zYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

	// Mixed hash kinds first, as a gateway with an imported user base sees them.
	for _, h := range []string{string(bcrypt10), dearArgon} {
		if _, err := flowengine.VerifyPassword(h, "wrong"); err != nil {
			t.Fatalf("verifying %.12s…: %v", h, err)
		}
	}
	// Warm up: the first argon2id call pays for growing the heap.
	flowengine.DummyVerify("wrong")
	_, _ = flowengine.VerifyPassword(known, "wrong")

	cases := []struct {
		name string
		run  func()
	}{
		{"known user, default hash", func() { _, _ = flowengine.VerifyPassword(known, "wrong-password") }},
		{"unknown user", func() { flowengine.DummyVerify("wrong-password") }},
		{"inactive user", func() { flowengine.DummyVerify("wrong-password") }},
	}
	// Before each sample, a cheap non-default hash: a dummy that followed the
	// last hash seen would then cost a fraction of a default one.
	mixers := []string{string(bcrypt4), cheapArgon}
	// A shared 2-core machine (or the race detector) makes single timings
	// noisy: while the medians are further apart than 10 %, take 15 more
	// samples of each and compare the medians of all taken. A real leak (a
	// different hash cost) does not shrink with more samples; noise does.
	const samples, rounds = 15, 4
	times := make([][]time.Duration, len(cases))
	for round := 1; ; round++ {
		// Interleaved (a, b, c, a, b, c, …) so that load falls on every case alike.
		for i := range samples {
			for j, tc := range cases {
				_, _ = flowengine.VerifyPassword(mixers[(i*len(cases)+j)%len(mixers)], "wrong")
				runtime.GC() // argon2id allocates 46 MiB: collect outside the timed part
				start := time.Now()
				tc.run()
				times[j] = append(times[j], time.Since(start))
			}
		}
		medians := make([]time.Duration, len(cases))
		for j, tc := range cases {
			sorted := slices.Sorted(slices.Values(times[j]))
			medians[j] = sorted[len(sorted)/2]
			t.Logf("%d samples: %-25s median %v (min %v, max %v)", len(sorted), tc.name, medians[j], sorted[0], sorted[len(sorted)-1])
		}
		lo, hi := slices.Min(medians), slices.Max(medians)
		if float64(hi-lo) <= 0.10*float64(lo) {
			return
		}
		if round == rounds {
			t.Fatalf("medians of %d samples differ by more than 10%% (%v): an attacker can tell which usernames exist", rounds*samples, medians)
		}
	}
}
