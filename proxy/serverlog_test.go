package proxy

import (
	"log/slog"
	"strings"
	"testing"
)

// TestServerLogLevels: net/http's server log lines about clients go to
// debug, and a handler's panic (a bug of ours) to error.
func TestServerLogLevels(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := serverLog{l}
	for _, c := range []struct{ line, level string }{
		{"http: TLS handshake error from 127.0.0.1:1234: EOF\n", "DEBUG"},
		{"http: panic serving 127.0.0.1:38936: runtime error: index out of range\ngoroutine 554 [running]:\n", "ERROR"},
	} {
		buf.Reset()
		if n, err := w.Write([]byte(c.line)); n != len(c.line) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", c.line, n, err, len(c.line))
		}
		if !strings.Contains(buf.String(), "level="+c.level) {
			t.Errorf("Write(%q) logged %q, want level %s", c.line, buf.String(), c.level)
		}
	}
}
