package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowgate/flowgate/flowengine"
	"github.com/flowgate/flowgate/flowengine/store/redis"
	"github.com/flowgate/flowgate/flowengine/store/redis/redistest"
	"github.com/flowgate/flowgate/flowengine/store/storetest"
)

// client talks to a test server. The timeouts only bound a hung server: a
// stopped one refuses at once. They are generous because under -race, with the
// other packages' tests on two cores, a first Lua script load can take
// hundreds of milliseconds.
func client(addr string) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{addr},
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second, MaxRetries: -1})
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
		n++
		s, err := redis.New(redis.Options{Client: client(srv.Addr), Prefix: "{t" + flowengine.NewID()[:8] + "}:", Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two stores on one Redis are two replicas: what one writes the other sees, and
// usernames stay unique across them.
func TestReplicasShareState(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, _ := redis.New(redis.Options{Client: client(srv.Addr)})
	b, _ := redis.New(redis.Options{Client: client(srv.Addr)})
	defer a.Close()
	defer b.Close()
	if err := a.CreateUser(ctx, &flowengine.User{ID: "1", Username: "Zoe", Email: "z@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateUser(ctx, &flowengine.User{ID: "2", Username: "zoe"}); !errors.Is(err, flowengine.ErrConflict) {
		t.Fatalf("same username on the other replica: %v", err)
	}
	if u, err := b.GetUserByEmail(ctx, "Z@EXAMPLE.COM"); err != nil || u.ID != "1" {
		t.Fatalf("user written on A not seen on B: %v", err)
	}
	for i := 0; i < 3; i++ {
		a.IncrCounter(ctx, "ip:1", time.Minute)
		b.IncrCounter(ctx, "ip:1", time.Minute)
	}
	if n, _ := a.GetCounter(ctx, "ip:1"); n != 6 {
		t.Fatalf("counters not shared: %d", n)
	}
	got := make(chan string, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.Subscribe(sctx, func(m string) { got <- m })
	time.Sleep(100 * time.Millisecond)
	if err := a.ApplyConfig(ctx, "", &flowengine.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "config" {
			t.Fatalf("notice %q", m)
		}
	case <-time.After(time.Second):
		t.Fatal("change notice not received within 1s")
	}
}

// A Redis outage is ErrUnavailable (callers fail closed), and the store recovers
// by itself; with append-only persistence a restart keeps users.
func TestOutageAndPersistence(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, _ := redis.New(redis.Options{Client: client(srv.Addr)})
	defer s.Close()
	if err := s.CreateUser(ctx, &flowengine.User{ID: "1", Username: "kept"}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := s.GetSession(ctx, "x"); !errors.Is(err, flowengine.ErrUnavailable) {
		t.Fatalf("during outage: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	var err error
	for i := 0; i < 20; i++ {
		if _, err = s.GetUserByUsername(ctx, "kept"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func BenchmarkSessionLookup(b *testing.B) {
	srv := redistest.Start(b)
	s, _ := redis.New(redis.Options{Client: client(srv.Addr)})
	defer s.Close()
	storetest.BenchmarkSessionLookup(b, s)
}

// Bytes stored per session and per user, as the README's sizing uses them.
func TestMemoryPerRecord(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c := client(srv.Addr)
	s, _ := redis.New(redis.Options{Client: c})
	defer s.Close()
	u := &flowengine.User{ID: flowengine.NewID(), Username: "someone.long@example", Email: "someone.long@example.com",
		Name: "Some One", IsActive: true, PasswordHash: "$argon2id$v=19$m=47104,t=1,p=1$Sp2YFo55Eh/EAzwT1jTCyw$mLe6gRWoWVPLunzpsjxvHEmOPZfnqhQQePqy+kNjhf4",
		Groups: []string{"staff", "dev"}, CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &flowengine.Session{ID: flowengine.NewID(), UserID: u.ID, CreatedAt: time.Now(), LastSeen: time.Now(),
		ExpiresAt: time.Now().Add(24 * time.Hour), ClientIP: "2001:db8::1234", AuthMethods: []string{"password"},
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	usage := func(key string) int64 {
		n, err := c.MemoryUsage(ctx, redis.DefaultPrefix+key).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", key, err)
		}
		return n
	}
	sessionBytes := usage("s:"+sess.ID) + usage("us:"+u.ID)/2 // the index set, shared by a user's sessions
	userBytes := usage("u:"+u.ID) + usage("un:"+flowengine.NormalizeKey(u.Username)) + usage("ue:"+flowengine.NormalizeKey(u.Email))
	t.Logf("per session ≈ %d bytes, per user ≈ %d bytes (MEMORY USAGE)", sessionBytes, userBytes)
	if sessionBytes > 1024 || userBytes > 1536 {
		t.Fatalf("records grew: session %d bytes, user %d bytes", sessionBytes, userBytes)
	}
}

// The same store on a three-master Redis Cluster: every key shares one hash tag,
// so the multi-key scripts run on one node.
func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
		client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: cl.Addrs, DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second})
		s, err := redis.New(redis.Options{Client: client, Prefix: "{c" + flowengine.NewID()[:8] + "}:", Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The same store through Sentinel: the client asks the sentinel for the master.
func TestConformanceSentinel(t *testing.T) {
	sn := redistest.StartSentinel(t)
	storetest.Run(t, func(t *testing.T, c *flowengine.ManualClock) flowengine.Store {
		client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{sn.Addr}, MasterName: sn.MasterName,
			DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second})
		s, err := redis.New(redis.Options{Client: client, Prefix: "{s" + flowengine.NewID()[:8] + "}:", Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
