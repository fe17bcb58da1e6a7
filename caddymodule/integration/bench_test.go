package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowgate/flowgate/flowengine/blueprint"
)

// BenchmarkProxied sends authenticated requests through one in-process Caddy to
// a `respond` upstream on four routes: plain reverse_proxy, the same with
// header_up adding the four identity headers (what carrying them costs without
// any authentication), flowgate with a bolt store, and flowgate sending only
// Remote-User (header_email/name/groups "-"). allocs/op and B/op count
// the whole process (client, gateway and upstream), so the differences between
// the routes are what sits in front of reverse_proxy.
//
//	go test -run '^$' -bench Proxied -benchmem ./caddymodule/integration/
func BenchmarkProxied(b *testing.B) {
	dir := b.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("bench-pw"), bcrypt.MinCost)
	users := filepath.Join(dir, "users.yaml")
	seed := fmt.Sprintf("version: 1\nusers:\n  - {username: bench, email: bench@example.com, name: Bench User, groups: [staff, dev], password_hash: %q}\n", hash)
	if err := os.WriteFile(users, []byte(seed), 0o600); err != nil {
		b.Fatal(err)
	}
	flows := filepath.Join(dir, "flows.yaml")
	if err := os.WriteFile(flows, blueprint.DefaultsYAML(), 0o600); err != nil {
		b.Fatal(err)
	}
	tc := newTester(b)
	tc.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	persist_config off
	http_port 9080
	grace_period 1ns
	flowgate {
		storage bolt %s
		blueprints %s %s
		secret_keys %s %s
	}
}
http://localhost:9081 {
	respond "hello from upstream" 200
}
http://localhost:9080 {
	handle /plain {
		reverse_proxy localhost:9081
	}
	handle /header_up {
		reverse_proxy localhost:9081 {
			header_up Remote-User bench
			header_up Remote-Email bench@example.com
			header_up Remote-Name "Bench User"
			header_up Remote-Groups staff,dev
		}
	}
	handle /user_only {
		flowgate {
			header_email -
			header_name -
			header_groups -
		}
		reverse_proxy localhost:9081
	}
	handle {
		flowgate
		reverse_proxy localhost:9081
	}
}
`, filepath.Join(dir, "flowgate.db"), users, flows, hashKey1, blockKey1), "caddyfile")

	g := &gateway{t: b, tc: tc}
	if res := g.login("bench", "bench-pw", "/"); res["type"] != "redirect" {
		b.Fatalf("login: %v", res)
	}
	c := g.sessionCookie()
	if c == nil {
		b.Fatal("no session cookie after login")
	}
	cookie := c.Name + "=" + c.Value

	for _, route := range []string{"plain", "header_up", "flowgate", "user_only"} {
		b.Run(route, func(b *testing.B) {
			req, _ := http.NewRequest("GET", base+"/"+route, nil)
			req.Header.Set("Cookie", cookie)
			get := func() {
				resp, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "hello from upstream" {
					b.Fatalf("%s: %d %s", route, resp.StatusCode, body)
				}
			}
			get()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}
