package proxy

import (
	"context"
	"log/slog"
)

// logAccess writes rec as one access log line at info level, message
// "request" (Options.AccessLog; text or JSON as its handler is). The
// fields, in order: client, user (when set), method, url, status, cache
// (X-Cache), result, from_cache and from_upstream (body bytes), resumes,
// duration and ttfb (seconds), miss_reason (when a MISS could have been
// a hit) and client_aborted (when the client left early).
func (p *Proxy) logAccess(rec AccessRecord) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("client", rec.Client))
	if rec.User != "" {
		attrs = append(attrs, slog.String("user", rec.User))
	}
	attrs = append(attrs,
		slog.String("method", clip(rec.Method)),
		slog.String("url", rec.URL),
		slog.Int("status", rec.Status),
		slog.String("cache", rec.Cache),
		slog.String("result", rec.Result),
		slog.Int64("from_cache", rec.FromCache),
		slog.Int64("from_upstream", rec.FromUpstream),
		slog.Int64("resumes", rec.Resumes),
		slog.Float64("duration", rec.Duration.Seconds()),
		slog.Float64("ttfb", rec.FirstByte.Seconds()),
	)
	if rec.MissReason != "" {
		attrs = append(attrs, slog.String("miss_reason", rec.MissReason))
	}
	if rec.ClientAborted {
		attrs = append(attrs, slog.Bool("client_aborted", true))
	}
	p.opts.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
