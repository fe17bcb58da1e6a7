package flowengine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a Go duration ("24h", "90m") or authentik's timedelta form
// ("hours=24;minutes=30", "days=30", "seconds=0"), so authentik exports carry over.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if !strings.Contains(s, "=") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 24h or hours=24", s)
		}
		return d, nil
	}
	units := map[string]time.Duration{
		"weeks": 7 * 24 * time.Hour, "days": 24 * time.Hour, "hours": time.Hour,
		"minutes": time.Minute, "seconds": time.Second, "milliseconds": time.Millisecond,
		"microseconds": time.Microsecond,
	}
	var total time.Duration
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		unit, known := units[strings.TrimSpace(k)]
		if !ok || !known {
			return 0, fmt.Errorf("duration %q: unknown part %q", s, part)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("duration %q: bad number in %q", s, part)
		}
		total += time.Duration(n * float64(unit))
	}
	return total, nil
}
