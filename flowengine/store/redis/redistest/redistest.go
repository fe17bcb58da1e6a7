// Package redistest runs a real, private redis-server for tests.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server process on a loopback port.
type Server struct {
	Addr string
	dir  string
	port int
	cmd  *exec.Cmd
	t    testing.TB
	// extra arguments for redis-server (cluster mode)
	extra []string
}

// Start runs redis-server on a free loopback port with its data in a temp dir
// (append-only file on, fsync on every write, so a restart keeps everything). Under CI=true a missing
// redis-server fails the test; elsewhere it skips, saying why.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found (CI=true): make test installs it with apt-get install redis-server")
		}
		t.Skip("redis-server not found; install Debian's redis-server (make test does) to run Redis tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir(), port: port, t: t}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again (after Stop), on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"))
	s.cmd.Args = append(s.cmd.Args, s.extra...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server did not start on %s", s.Addr)
}

// Stop kills the server (as an outage would).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Cluster is a Redis Cluster of three masters on loopback ports.
type Cluster struct {
	Addrs []string
	nodes []*Server
}

// StartCluster runs three cluster-enabled redis-servers and joins them with
// redis-cli --cluster create. Missing binaries fail under CI=true, else skip.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli not found (CI=true): it comes with Debian's redis-server")
		}
		t.Skip("redis-cli not found; install Debian's redis-server to run the Cluster test")
	}
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		s := Start(t)
		s.Stop()
		s.extra = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"), "--cluster-node-timeout", "2000"}
		s.Restart()
		c.nodes = append(c.nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Ready when every node says so, not just the first.
	for i := 0; i < 200; i++ {
		ok := true
		for _, a := range c.Addrs {
			host, port, _ := net.SplitHostPort(a)
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			ok = ok && strings.Contains(string(out), "cluster_state:ok")
		}
		if ok {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("cluster did not become ready")
	return nil
}

// Sentinel is a redis-server master watched by one redis-sentinel.
type Sentinel struct {
	Addr       string // the sentinel's
	MasterName string
	Master     *Server
}

// StartSentinel runs a master and a sentinel monitoring it as "flowgate".
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-sentinel not found (CI=true): make test installs it with apt-get install redis-sentinel")
		}
		t.Skip("redis-sentinel not found; install Debian's redis-sentinel (make test does) to run the Sentinel test")
	}
	master := Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	_, mport, _ := net.SplitHostPort(master.Addr)
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor flowgate 127.0.0.1 %s 1\nsentinel down-after-milliseconds flowgate 1000\n",
		port, dir, filepath.Join(dir, "sentinel.log"), mport)), 0o600)
	cmd := exec.Command("redis-sentinel", conf)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-sentinel: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &Sentinel{Addr: fmt.Sprintf("127.0.0.1:%d", port), MasterName: "flowgate", Master: master}
	for i := 0; i < 100; i++ {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "sentinel", "get-master-addr-by-name", "flowgate").Output()
		if strings.Contains(string(out), mport) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("sentinel did not start")
	return nil
}
