package caddymodule

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteDeviceTable(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      []string
		wantErr   bool
	}{
		{"none", `[]`, []string{"no devices"}, false},
		{"two", `[{"id":"d1","class":"totp","name":"Phone","created_at":"2026-03-04T05:06:07Z","last_used":"2026-03-05T08:00:00Z"},
			{"id":"d2","class":"static","name":"Recovery codes\u001b[2J","created_at":"2026-03-04T05:07:00Z"}]`,
			[]string{"ID  CLASS   NAME", "d1  totp    Phone", "2026-03-04 05:06  2026-03-05 08:00", "d2  static  Recovery codes\uFFFD[2J", "never"}, false},
		{"not a list", `{"error":"x"}`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := writeDeviceTable(&buf, []byte(tc.raw), time.UTC)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Fatalf("table lacks %q:\n%s", w, buf.String())
				}
			}
		})
	}
}
