package proxy

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// A large download is fetched over several connections at once (issue 12),
// as aria2 does for one client, here for every client: many origins limit
// each connection, and N connections then go N times faster. A download is
// split into segments: bounded ranged requests (bytes=a-b, never an
// open-ended request closed early), each a fill of its own span, with the
// same conditions and checks as any fill (If-Match, the 206 check,
// resumes after drops). The segmenter of a download keeps up to
// PerDownload of them running, nearest the reader first, within FillAhead
// past its fastest reader, and at most PerHost across the downloads of one
// host. The first fill of a cold download (an open-ended 200) is shrunk to
// the first segment; the bytes it has in flight past that are the only
// ones a segmented download fetches twice.

// Segments configures segmented fills.
type Segments struct {
	// MinSize is the smallest download split into segments: smaller ones
	// are one fill. Default 16 MiB.
	MinSize int64
	// PerDownload caps the connections of one download. 1 turns
	// segmenting off. Default 4.
	PerDownload int
	// PerHost caps the segment connections to one host, across
	// downloads. Default 8.
	PerHost int
}

// errNoRanges: an origin answered a segment's ranged request with the
// whole body: it ignores ranges, and the download goes on over one
// connection.
var errNoRanges = errors.New("proxy: upstream ignores byte ranges; not segmenting")

// segmentSize is the span of one segment: FillAhead shared by the
// connections of a download, in whole MiB (blocks are checked by the MiB),
// at least 1 MiB.
func (p *Proxy) segmentSize() int64 {
	n := p.opts.FillAhead / int64(max(p.opts.Segments.PerDownload, 1))
	return max(n&^(1<<20-1), 1<<20)
}

// segmentable reports whether the download of m, from its byte at, is
// worth splitting and may be: large, resumable, from an origin that
// serves ranges, with more than one segment left.
func (p *Proxy) segmentable(m cache.Meta, at int64, host string) bool {
	sg := p.opts.Segments
	return sg.PerDownload > 1 && m.Size >= sg.MinSize && m.Size-at > p.segmentSize() &&
		validatorOf(m).Resumable() && acceptsRanges(http.Header(m.Header)) && !p.hosts.rangeless(host, p.now())
}

// acceptsRanges reports whether a response lets us hope its server serves
// ranges: unless it says "Accept-Ranges: none" (RFC 9110 §14.3). Many
// servers that do serve them say nothing on a GET (Debian's mirror network
// among them); one that then answers a segment with the whole body is
// marked range-less (errNoRanges) and served over one connection.
func acceptsRanges(h http.Header) bool {
	units := h.Values("Accept-Ranges")
	if len(units) == 0 {
		return true
	}
	for _, v := range units {
		for _, u := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(u), "bytes") {
				return true
			}
		}
	}
	return false
}

// segmentAfter splits the download fill f belongs to when it may be: f is
// shrunk to the end of its segment (every fill of a segmented download
// spans at most one), and a segmenter, one per download, claims the rest.
func (p *Proxy) segmentAfter(f *cache.Fill, e *cache.Entry, src source) {
	if p.shrinkToSegment(f, e.Meta(), src.url.Host) {
		p.startSegmenter(f, e, src)
	}
}

// shrinkToSegment ends fill f, of the version m, at the end of its
// segment when the download may be split; it reports whether it did.
func (p *Proxy) shrinkToSegment(f *cache.Fill, m cache.Meta, host string) bool {
	return p.segmentable(m, f.Start(), host) && f.Shrink(alignUp(f.Start()+1, p.segmentSize()))
}

// startSegmenter starts the segmenter of e's download, unless one runs:
// it claims what follows fill f in segments.
func (p *Proxy) startSegmenter(f *cache.Fill, e *cache.Entry, src source) {
	p.segMu.Lock()
	running := p.segmenting[e]
	p.segmenting[e] = true
	p.segMu.Unlock()
	if running {
		return
	}
	p.log.Debug("download split into segments", "url", clip(src.url.Redacted()), "size", src.size, "segment", p.segmentSize())
	e.Acquire()
	go func() {
		defer e.Release()
		p.segmenter(e, src, f)
		p.segMu.Lock()
		delete(p.segmenting, e)
		p.segMu.Unlock()
	}()
}

// alignUp is the first multiple of n at or after off.
func alignUp(off, n int64) int64 { return (off + n - 1) / n * n }

// segmenter keeps segments of e running, first the fill that started it
// (one of the PerDownload connections while it runs), until the body is
// claimed to its end, it is replaced, its origin turns out to ignore
// ranges or fails a segment, or its clients are gone and quick abort does
// not finish it.
//
// When the last client leaves, the download's quick-abort decision is
// taken once, on what the entry holds (QuickAbort.finishes with the bytes
// present): a download to finish in the background goes on, with no
// reader to stay near, every gap in turn, for at most QuickAbort.MaxTime;
// otherwise no new segment starts. A client that comes back before then
// makes it a download with readers again.
//
// A segment that fails after its retries ends the segmenter: claiming its
// span again at once would ask a failing origin round after round. A
// reader that reaches the gap fetches it itself, with its own retries
// (and splits the rest again if that works); with nobody reading, the
// download stays partial.
func (p *Proxy) segmenter(e *cache.Entry, src source, first *cache.Fill) {
	rs := p.readersOf(e)
	defer p.dropReaders(e, rs)
	host := src.url.Host
	var running []*cache.Fill
	defer func() {
		for range running {
			p.hosts.release(host)
		}
	}()
	var finishBy time.Time // set while finishing with nobody reading
	for {
		changed, moved := e.Changed(), rs.changed()
		var failed error
		running, failed = p.reapSegments(running, host)
		if e.Obsolete() || p.hosts.rangeless(host, p.now()) {
			return
		}
		if failed != nil {
			p.log.Info("a segment failed after its retries; starting no more for this download",
				"url", clip(src.url.Redacted()), "err", clipErr(failed))
			return
		}
		background := e.Clients() == 0
		switch {
		case !background:
			finishBy = time.Time{}
		case finishBy.IsZero():
			if !p.finishUnread(e, src) {
				return
			}
			finishBy = p.now().Add(p.opts.QuickAbort.MaxTime)
		case p.now().After(finishBy):
			return
		}
		limit := p.opts.Segments.PerDownload
		if _, done, _ := first.State(); !done {
			limit--
		}
		from, window := p.segmentWindow(rs, first.End())
		if background {
			from, window = 0, src.size // no reader: every gap, in order
		}
		if from >= src.size {
			return
		}
		if len(running) < limit && p.hosts.acquire(host, p.now()) {
			if f := p.claimSegment(e, from, min(window, src.size), src.size); f != nil {
				p.startSegment(f, e, src)
				running = append(running, f)
				continue
			}
			p.hosts.release(host)
			if len(running) == 0 && nextUnclaimed(e, from, src.size) >= src.size {
				return // every byte is present or being fetched
			}
		}
		select {
		case <-changed:
		case <-moved:
		case <-time.After(segmentPoll):
		}
	}
}

// finishUnread is the quick-abort decision for a segmented download whose
// last client left: by the bytes e holds, since its segments do not end
// in order. It logs a download it finishes.
func (p *Proxy) finishUnread(e *cache.Entry, src source) bool {
	q := p.opts.QuickAbort
	have := e.Meta().Ranges.Covered()
	if !q.finishes(have, src.size, src.size) {
		return false
	}
	p.log.Info("last client left; finishing the download in the background",
		"url", clip(src.url.Redacted()), "stored", have, "left", src.size-have, "max_time", q.MaxTime, "segmented", true)
	return true
}

// startSegment drives fill f as one segment of src's download: a bounded
// continuation that must not be answered with the whole body.
func (p *Proxy) startSegment(f *cache.Fill, e *cache.Entry, src source) {
	src.segment = true
	p.startContinuation(f, e, src)
}

// claimSegment claims the first segment in [from, window) that nothing
// fills or holds yet, at most up to the next segment boundary; nil when
// there is none.
func (p *Proxy) claimSegment(e *cache.Entry, from, window, size int64) *cache.Fill {
	for off := from; off < window; {
		f, owner := e.Claim(off, min(alignUp(off+1, p.segmentSize()), size))
		switch {
		case owner:
			return f
		case f != nil:
			off = f.End() // another fill has it
		case e.Obsolete():
			return nil
		default:
			off = nextMissing(e, off, size) // present already
		}
	}
	return nil
}

// nextUnclaimed is nextMissing that also skips the bytes fills hold.
func nextUnclaimed(e *cache.Entry, off, end int64) int64 {
	for off < end {
		off = nextMissing(e, off, end)
		f := e.FillAt(off)
		if f == nil {
			return off
		}
		off = f.End()
	}
	return end
}

// segmentPoll is how often a waiting segmenter looks again when nothing
// woke it (a host's Retry-After ending).
const segmentPoll = 100 * time.Millisecond

// reapSegments drops the segments that ended, giving their host slots
// back, and returns the error of one that failed, if any did.
func (p *Proxy) reapSegments(running []*cache.Fill, host string) ([]*cache.Fill, error) {
	out := running[:0]
	var failed error
	for _, f := range running {
		if _, done, err := f.State(); done {
			p.hosts.release(host)
			if failed == nil {
				failed = err
			}
			continue
		}
		out = append(out, f)
	}
	return out, failed
}

// segmentWindow is where a segmenter looks for gaps: from its slowest
// reader (from, before the first reader comes) to FillAhead past its
// fastest, and no further than any reader wants: the bytes nearest a
// reader come first, and nothing is fetched far ahead of everyone, or
// for nobody (a client that asked for a range).
func (p *Proxy) segmentWindow(rs *readers, from int64) (start, end int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.at) == 0 {
		return from, from + p.opts.FillAhead
	}
	start, furthest, wanted := int64(math.MaxInt64), int64(0), int64(0)
	for _, left := range rs.at {
		start, furthest, wanted = min(start, left.Start), max(furthest, left.Start), max(wanted, left.End)
	}
	return start, min(furthest+p.opts.FillAhead, wanted)
}

// nextMissing returns the first byte at or after off that e lacks (end
// when none).
func nextMissing(e *cache.Entry, off, end int64) int64 {
	gaps := e.Meta().Ranges.Missing(rangeutil.Range{Start: off, End: end})
	if len(gaps) == 0 {
		return end
	}
	return gaps[0].Start
}

// hostSlots caps the segment connections per host (Segments.PerHost) and
// lowers the cap of a host that answers 429 or 503, for as long as its
// Retry-After says.
type hostSlots struct {
	perHost int

	mu    sync.Mutex
	hosts map[string]*hostState
	// rangelessUntil holds the hosts that answered a segment with the
	// whole body, until when they are served over one connection
	// (rangelessFor; at most maxRangeless hosts).
	rangelessUntil map[string]time.Time
}

// rangelessFor is how long a host that ignored a segment's range is served
// over one connection before it is tried again (a server's configuration
// can change), and maxRangeless bounds how many such hosts are kept.
const (
	rangelessFor = time.Hour
	maxRangeless = 1024
)

type hostState struct {
	active int
	limit  int       // PerHost, lowered by refusals
	until  time.Time // no new segment before this (Retry-After)
}

func (h *hostSlots) stateLocked(host string) *hostState {
	if h.hosts == nil {
		h.hosts = map[string]*hostState{}
	}
	s := h.hosts[host]
	if s == nil {
		s = &hostState{limit: h.perHost}
		h.hosts[host] = s
	}
	return s
}

// acquire takes a slot for a new segment to host, if one is free.
func (h *hostSlots) acquire(host string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stateLocked(host)
	if s.active >= s.limit || now.Before(s.until) {
		return false
	}
	s.active++
	return true
}

// release gives a slot back; a host with none in use is forgotten, so the
// map holds only hosts with segments under way (and their lowered caps
// last as long as those do).
func (h *hostSlots) release(host string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stateLocked(host)
	if s.active--; s.active <= 0 {
		delete(h.hosts, host)
	}
}

// refused lowers host's cap by one (at least one segment keeps going) and
// holds new segments for retryAfter.
func (h *hostSlots) refused(host string, retryAfter time.Duration, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stateLocked(host)
	s.limit = max(1, min(s.limit, s.active)-1)
	s.until = now.Add(retryAfter)
}

// markRangeless serves host over one connection for rangelessFor.
func (h *hostSlots) markRangeless(host string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rangelessUntil == nil {
		h.rangelessUntil = map[string]time.Time{}
	}
	if len(h.rangelessUntil) >= maxRangeless {
		for k, until := range h.rangelessUntil {
			if !until.After(now) || len(h.rangelessUntil) >= maxRangeless {
				delete(h.rangelessUntil, k) // the expired ones, or any until there is room
			}
		}
	}
	h.rangelessUntil[host] = now.Add(rangelessFor)
}

// rangeless reports whether host ignored a segment's range lately.
func (h *hostSlots) rangeless(host string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rangelessUntil[host].After(now)
}

// retryAfter reads a Retry-After field (RFC 9110 §10.2.3: seconds or a
// date), at most maxRetryAfter; 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(min(d, maxRetryAfter), 0)
}

// honourRetryAfter makes the next wait of b at least what a 429 or 503
// asked for, and lowers the segment cap of its host.
func (p *Proxy) honourRetryAfter(err error, src source, b *budget) {
	var se *statusError
	if !errors.As(err, &se) || se.retryAfter <= 0 {
		return
	}
	b.backoff = max(b.backoff, se.retryAfter)
	p.log.Info("upstream asked to slow down", "host", clip(src.url.Host), "status", se.code, "retry_after", se.retryAfter, "segment", src.segment)
	if src.segment {
		p.hosts.refused(src.url.Host, se.retryAfter, p.now()) // fewer segments for its host
	}
}

// maxRetryAfter bounds the wait a Retry-After can ask for.
const maxRetryAfter = 5 * time.Minute
