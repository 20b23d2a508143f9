package proxy

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// What the proxy shows of itself: the downloads under way (the status
// page), upstream failures and bytes (the Observer), and PURGE, which it
// hands to Options.Admin.

// methodPurge is Squid's PURGE: "PURGE http://host/path" removes the URL
// from the cache (Options.Admin answers it).
const methodPurge = "PURGE"

// servePurge hands a PURGE request to the admin handler, which decides
// who may purge and answers.
func (p *Proxy) servePurge(w http.ResponseWriter, r *http.Request) {
	if ex := exchangeOf(r); ex != nil {
		ex.purge.Store(true)
	}
	p.opts.Admin.ServeHTTP(w, r)
}

// upstreamFailed reports a failed upstream exchange to the Observer.
func (p *Proxy) upstreamFailed(kind string, u *url.URL, err error) {
	f := UpstreamFailure{Time: p.now(), Kind: kind, Err: clipErr(err)}
	if u != nil {
		f.URL = logURL(u, p.opts.Rules.Key(u).Stripped)
	}
	p.obs.UpstreamError(f)
}

// countedBody counts the bytes of a passed-through upstream body.
type countedBody struct {
	io.ReadCloser
	obs Observer
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.obs.UpstreamBytes(int64(n))
	}
	return n, err
}

// maxShownRanges bounds the stored ranges a Download carries: a range map
// is drawn a few hundred pixels wide.
const maxShownRanges = 256

// Download is one entry being read or filled now, as the status page
// shows it.
type Download struct {
	Key string
	// Size is the complete length, -1 while unknown; Stored the bytes
	// present now, Ranges where they are (at most 256 ranges, the first).
	Size, Stored int64
	Ranges       []rangeutil.Range
	// Clients counts the responses reading the entry; Position is the
	// furthest one's next byte.
	Clients  int
	Position int64
	// Filling is set while a fill fetches bytes upstream.
	Filling bool
	// FromCache and FromUpstream count the bytes sent to the current
	// clients so far, by whether they were stored when each arrived.
	FromCache, FromUpstream int64
	// Since is when the earliest current client arrived.
	Since time.Time
}

// Downloads returns the entries being read or filled now, by key.
func (p *Proxy) Downloads() []Download {
	p.readersMu.Lock()
	entries := make(map[*cache.Entry]*readers, len(p.readers))
	for e, rs := range p.readers {
		entries[e] = rs
	}
	p.readersMu.Unlock()
	sent := p.sentByEntry()
	out := make([]Download, 0, len(entries))
	for e, rs := range entries {
		m := e.Meta()
		d := Download{Key: e.Key(), Size: m.Size, Stored: m.Ranges.Covered(), Filling: e.Busy()}
		d.Ranges = m.Ranges.Ranges()
		if len(d.Ranges) > maxShownRanges {
			d.Ranges = d.Ranges[:maxShownRanges]
		}
		rs.mu.Lock()
		d.Clients = len(rs.at)
		for _, left := range rs.at {
			d.Position = max(d.Position, left.Start)
		}
		rs.mu.Unlock()
		if s, ok := sent[e]; ok {
			d.FromCache, d.FromUpstream, d.Since = s.FromCache, s.FromUpstream, s.Since
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Download) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// sentByEntry sums what the requests under way sent, by the entry they
// read.
func (p *Proxy) sentByEntry() map[*cache.Entry]Download {
	p.exMu.Lock()
	exs := make([]*exchange, 0, len(p.exchanges))
	for ex := range p.exchanges {
		exs = append(exs, ex)
	}
	p.exMu.Unlock()
	sums := map[*cache.Entry]Download{}
	for _, ex := range exs {
		ex.mu.Lock()
		e := ex.entry
		ex.mu.Unlock()
		if e == nil {
			continue
		}
		written := ex.w.written.Load()
		fromCache := min(ex.fromCache.Load(), written)
		d := sums[e]
		d.FromCache += fromCache
		d.FromUpstream += written - fromCache
		if d.Since.IsZero() || ex.start.Before(d.Since) {
			d.Since = ex.start
		}
		sums[e] = d
	}
	return sums
}
