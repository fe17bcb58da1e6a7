// Command flood is the login-flood load test of `make bench` (scripts/flood.sh
// starts the gateway): many sign-in flows at once, each from its own client IP
// (X-Forwarded-For, trusted by the gateway), each ending in a wrong password
// for an unknown name, while one signed-in user's proxied requests are timed.
// It reports the answers to the password step by status, dropped connections,
// the signed-in requests' latency, the gateway's peak RSS (VmHWM of -pid) and
// the total time, and exits 1 if a target is missed. Loopback only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:18092", "the flowgate-protected site (loopback only)")
	flows := flag.Int("flows", 400, "sign-in flows sent at once, each from its own client IP")
	cookie := flag.String("cookie", "", "a signed-in user's flowgate_session cookie value")
	pid := flag.Int("pid", 0, "the gateway's process ID, for its peak RSS")
	maxRSS := flag.Int("max-rss-mib", 512, "target: peak RSS of the gateway, MiB")
	maxP99 := flag.Duration("max-p99", 100*time.Millisecond, "target: p99 of the signed-in requests during the flood")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up on a request after this long")
	flag.Parse()
	if u, err := url.Parse(*target); err != nil || !isLoopback(u.Hostname()) {
		fmt.Fprintln(os.Stderr, "flood: -target must be a loopback URL")
		os.Exit(2)
	}
	if *flows < 1 || *flows > 5000 || *cookie == "" {
		fmt.Fprintln(os.Stderr, "flood: want 1 to 5000 -flows and a -cookie")
		os.Exit(2)
	}
	api := strings.TrimSuffix(*target, "/") + "/.flowgate/api/v1/flows/default-authentication/"

	// Every flow on its own connections, as its own client would be.
	transport := &http.Transport{MaxIdleConnsPerHost: *flows, MaxConnsPerHost: 0, IdleConnTimeout: 30 * time.Second}
	results := make([]flowResult, *flows)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 10.0.0.0/8 addresses, one per flow: regulation counts each apart.
			ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255+1)
			<-gate
			results[i] = runFlow(transport, api, ip, fmt.Sprintf("nobody-%d", i), *timeout)
		}()
	}

	// The signed-in user browses, one request at a time, until the flood ends.
	stop := make(chan struct{})
	var signedIn []time.Duration
	var signedInBad []string
	browsing := make(chan struct{})
	go func() {
		defer close(browsing)
		c := &http.Client{Timeout: *timeout, Transport: &http.Transport{}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, *target+"/", nil)
			req.AddCookie(&http.Cookie{Name: "flowgate_session", Value: *cookie})
			start := time.Now()
			resp, err := c.Do(req)
			took := time.Since(start)
			if err != nil {
				signedInBad = append(signedInBad, err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				signedInBad = append(signedInBad, resp.Status)
			}
			signedIn = append(signedIn, took)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	start := time.Now()
	close(gate)
	wg.Wait()
	total := time.Since(start)
	close(stop)
	<-browsing

	byStatus, busyRetry := map[string]int{}, map[string]int{}
	dropped, early := map[string]int{}, map[string]int{}
	for _, r := range results {
		switch {
		case r.err != "":
			dropped[r.err]++
		case r.step < 3:
			early[fmt.Sprintf("step %d answered %d", r.step, r.status)]++
		default:
			byStatus[statusClass(r.status)]++
			if r.status == http.StatusTooManyRequests {
				busyRetry["Retry-After: "+r.retryAfter]++
			}
		}
	}
	sort.Slice(signedIn, func(i, j int) bool { return signedIn[i] < signedIn[j] })
	rss := peakRSS(*pid)

	fmt.Printf("login flood: %d flows at once (unknown names, wrong passwords, one client IP each), total %s\n",
		*flows, total.Round(time.Millisecond))
	fmt.Printf("  password answers by status: 200 %d | 429 %d | other %d   %v\n",
		byStatus["200"], byStatus["429"], byStatus["other"], busyRetry)
	fmt.Printf("  dropped connections or unreadable answers: %d %v; flows stopped before the password step: %d %v\n",
		countAll(dropped), dropped, countAll(early), early)
	fmt.Printf("  signed-in proxied GETs during the flood: %d, p50 %s, p99 %s, max %s; failed %d %v\n",
		len(signedIn), pct(signedIn, 50), pct(signedIn, 99), pct(signedIn, 100), len(signedInBad), first(signedInBad, 3))
	if rss >= 0 {
		fmt.Printf("  gateway peak RSS (VmHWM): %.1f MiB\n", float64(rss)/1024)
	}

	missed := []string{}
	if byStatus["other"] > 0 || countAll(dropped) > 0 || countAll(early) > 0 {
		missed = append(missed, "every flood request answered 200 or 429")
	}
	if len(signedIn) == 0 || pct(signedIn, 99) > *maxP99 || len(signedInBad) > 0 {
		missed = append(missed, "signed-in p99 under "+maxP99.String()+", all 200")
	}
	if rss < 0 || rss > int64(*maxRSS)*1024 {
		missed = append(missed, fmt.Sprintf("peak RSS under %d MiB", *maxRSS))
	}
	if len(missed) > 0 {
		fmt.Printf("  targets MISSED: %s\n", strings.Join(missed, "; "))
		os.Exit(1)
	}
	fmt.Printf("  targets met: every answer 200/429, none dropped; signed-in p99 < %s; peak RSS < %d MiB\n", *maxP99, *maxRSS)
}

type flowResult struct {
	step       int // the last step answered: 1 start, 2 identification, 3 password
	status     int
	retryAfter string
	err        string // a dropped connection or unreadable answer
}

// runFlow walks one sign-in flow: start, identify as name, a wrong password.
func runFlow(transport http.RoundTripper, api, ip, name string, timeout time.Duration) flowResult {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: transport, Timeout: timeout}
	steps := []any{nil, map[string]string{"uid_field": name}, map[string]string{"password": "wrong-password"}}
	var r flowResult
	for i, body := range steps {
		method, path, rd := http.MethodGet, api+"?next=/", io.Reader(nil)
		if body != nil {
			raw, _ := json.Marshal(body)
			method, path, rd = http.MethodPost, api, bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, path, rd)
		req.Header.Set("X-Forwarded-For", ip)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			r.err = "dropped: " + shortErr(err)
			return r
		}
		var out map[string]any
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		r.step, r.status, r.retryAfter = i+1, resp.StatusCode, resp.Header.Get("Retry-After")
		if err != nil {
			r.err = fmt.Sprintf("unreadable answer (%d)", resp.StatusCode)
			return r
		}
		if resp.StatusCode != http.StatusOK || out["type"] != "challenge" {
			return r
		}
	}
	return r
}

func statusClass(s int) string {
	if s == http.StatusOK || s == http.StatusTooManyRequests {
		return strconv.Itoa(s)
	}
	return "other"
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	if i > len(sorted) {
		i = len(sorted)
	}
	return sorted[i-1].Round(10 * time.Microsecond)
}

// peakRSS reads VmHWM (KiB) of the process, -1 if it cannot.
func peakRSS(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func countAll(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
