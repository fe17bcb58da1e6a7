package cookiecodec_test

import (
	"strings"
	"testing"

	"github.com/flowgate/flowgate/caddymodule/cookiecodec"
)

const (
	h1 = "1111111111111111111111111111111111111111111111111111111111111111"
	b1 = "2222222222222222222222222222222222222222222222222222222222222222"
	h2 = "3333333333333333333333333333333333333333333333333333333333333333"
	b2 = "4444444444444444444444444444444444444444444444444444444444444444"
)

func must(t testing.TB, pairs ...string) *cookiecodec.Codec {
	c, err := cookiecodec.New(pairs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRotation(t *testing.T) {
	old := must(t, h1, b1)
	v, err := old.Encode("s", []byte("session-id"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := must(t, h2, b2, h1, b1)
	if got, ok := rotated.DecodeCached("s", v); !ok || got != "session-id" {
		t.Fatalf("old key still listed: %q %v", got, ok)
	}
	if _, ok := must(t, h2, b2).Decode("s", v); ok {
		t.Fatal("a removed key still decodes")
	}
	if _, ok := old.Decode("other-name", v); ok {
		t.Fatal("a value sealed for one cookie name opened for another")
	}
}

func TestBadKeys(t *testing.T) {
	for _, pairs := range [][]string{{}, {h1}, {h1, "abc"}, {h1, strings.Repeat("z", 64)}} {
		if _, err := cookiecodec.New(pairs); err == nil {
			t.Errorf("%v accepted", pairs)
		}
	}
}

// FuzzDecode: only sealed values decode — the keys have only ever sealed "id",
// so anything else that decodes would be a forgery — and nothing panics.
func FuzzDecode(f *testing.F) {
	c := must(f, h1, b1)
	good, _ := c.Encode("flowgate_session", []byte("id"))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("")
	f.Add("MTc5NjE2MTgwNHx8")
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := c.DecodeCached("flowgate_session", v)
		if ok && got != "id" {
			t.Fatalf("forged value %q decoded to %q", v, got)
		}
	})
}
