package admin

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// The JSON API the status page polls (/api/status) and the commands use
// (/api/entries, /api/purge, /api/verify). Byte ranges are half-open
// [start, end) pairs, as everywhere inside resumeproxy.

// statusCensusAge is how old the index scan behind the status page may
// be: the page polls every second, and a scan reads every record.
const statusCensusAge = 2 * time.Second

// maxEntryRanges bounds the ranges an entry carries in JSON: a range map
// is drawn a few hundred pixels wide.
const maxEntryRanges = 256

// Entry is one cache entry in the API.
type Entry struct {
	URL      string     `json:"url"`
	Size     int64      `json:"size"` // -1 while unknown
	Stored   int64      `json:"stored"`
	Complete bool       `json:"complete"`
	LastUse  time.Time  `json:"last_use"`
	Ranges   [][2]int64 `json:"ranges"`
	// MoreRanges is set when Ranges holds only the first 256.
	MoreRanges bool `json:"more_ranges,omitempty"`
}

func entryOf(i cache.Info) Entry {
	rs, more := rangesJSON(i.Ranges.Ranges())
	return Entry{URL: i.Key, Size: i.Size, Stored: i.Stored, Complete: i.Complete, LastUse: i.LastUse, Ranges: rs, MoreRanges: more}
}

// rangesJSON is rs as pairs, at most maxEntryRanges of them.
func rangesJSON(rs []rangeutil.Range) ([][2]int64, bool) {
	out := make([][2]int64, 0, min(len(rs), maxEntryRanges))
	for _, r := range rs[:min(len(rs), maxEntryRanges)] {
		out = append(out, [2]int64{r.Start, r.End})
	}
	return out, len(rs) > maxEntryRanges
}

// Info converts e back to what cache.List gives (the commands take it).
func (e Entry) Info() cache.Info {
	var rs rangeutil.Set
	for _, r := range e.Ranges {
		rs.Insert(rangeutil.Range{Start: r[0], End: r[1]})
	}
	return cache.Info{Key: e.URL, Size: e.Size, Stored: e.Stored, Complete: e.Complete, LastUse: e.LastUse, Ranges: rs}
}

// Entries is /api/entries: the entries whose URL contains q (partial ones
// only with partial=1), at most limit of them (0: all).
type Entries struct {
	Entries   []Entry `json:"entries"`
	Matched   int     `json:"matched"`
	Truncated bool    `json:"truncated"`
}

func (h *Handler) entries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	partial := r.URL.Query().Get("partial") == "1"
	limit := queryInt(r, "limit", 0)
	res := Entries{Entries: []Entry{}}
	err := h.opts.Cache.List(func(i cache.Info) bool {
		if !strings.Contains(i.Key, q) || partial && i.Complete {
			return true
		}
		res.Matched++
		if limit == 0 || len(res.Entries) < limit {
			res.Entries = append(res.Entries, entryOf(i))
		}
		return true
	})
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	res.Truncated = len(res.Entries) < res.Matched
	writeJSON(w, http.StatusOK, res)
}

// Download is a download under way in the API.
type Download struct {
	URL          string     `json:"url"`
	Size         int64      `json:"size"`
	Stored       int64      `json:"stored"`
	Ranges       [][2]int64 `json:"ranges"`
	Clients      int        `json:"clients"`
	Position     int64      `json:"position"`
	Filling      bool       `json:"filling"`
	FromCache    int64      `json:"from_cache"`
	FromUpstream int64      `json:"from_upstream"`
	Since        time.Time  `json:"since"`
	// Rate is how fast the furthest client moves, bytes per second;
	// ETA the seconds it needs at that rate (-1: unknown).
	Rate float64 `json:"rate"`
	ETA  float64 `json:"eta"`
}

// CacheState is the cache's side of /api/status.
type CacheState struct {
	Used          int64            `json:"used"`
	Max           int64            `json:"max"`
	Complete      int64            `json:"complete"`
	Partial       int64            `json:"partial"`
	CompleteBytes int64            `json:"complete_bytes"`
	PartialBytes  int64            `json:"partial_bytes"`
	Evictions     map[string]int64 `json:"evictions"`
	Fills         int64            `json:"fills"`
	Err           string           `json:"error,omitempty"`
}

// Status is /api/status: everything the status page shows.
type Status struct {
	Info
	Now       time.Time               `json:"now"`
	Totals    Totals                  `json:"totals"`
	Cache     CacheState              `json:"cache"`
	Downloads []Download              `json:"downloads"`
	Partials  []Entry                 `json:"partials"`
	Errors    []proxy.UpstreamFailure `json:"errors"`
}

func (h *Handler) status(w http.ResponseWriter, _ *http.Request) {
	now := h.opts.Now()
	cs := h.census.get(statusCensusAge)
	u := h.opts.Cache.Usage()
	st := Status{
		Info:   Info{Version: h.opts.Version, CacheDir: h.opts.CacheDir},
		Now:    now,
		Totals: h.opts.Stats.Totals(),
		Cache: CacheState{
			Used: u.Used, Max: u.MaxSize, Complete: cs.Complete, Partial: cs.Partial,
			CompleteBytes: cs.CompleteBytes, PartialBytes: cs.PartialBytes,
			Evictions: map[string]int64{"ttl": u.EvictedTTL, "size": u.EvictedSize, "purge": u.Purged},
			Fills:     h.opts.Proxy.FillsRunning(),
		},
		Downloads: h.rates.downloads(now, h.opts.Proxy.Downloads()),
		Partials:  make([]Entry, 0, len(cs.Partials)),
		Errors:    h.opts.Stats.RecentErrors(),
	}
	if cs.Err != nil {
		st.Cache.Err = cs.Err.Error()
	}
	for _, i := range cs.Partials {
		st.Partials = append(st.Partials, entryOf(i))
	}
	writeJSON(w, http.StatusOK, st)
}

// rateWindow is the least time between two samples of a download's
// position: shorter ones measure noise.
const rateWindow = 900 * time.Millisecond

// rates keeps the last sample of each download's position, to tell its
// rate: the proxy counts bytes, the page wants bytes per second.
type rates struct {
	// mu guards last.
	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	at   time.Time
	pos  int64
	rate float64
}

// downloads converts ds for the API, with their rates and ETAs.
func (r *rates) downloads(now time.Time, ds []proxy.Download) []Download {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Download, 0, len(ds))
	seen := make(map[string]bool, len(ds))
	for _, d := range ds {
		seen[d.Key] = true
		s, ok := r.last[d.Key]
		switch {
		case !ok:
			s = sample{at: now, pos: d.Position}
		case now.Sub(s.at) >= rateWindow:
			s.rate = max(0, float64(d.Position-s.pos)/now.Sub(s.at).Seconds())
			s.at, s.pos = now, d.Position
		}
		r.last[d.Key] = s
		ranges, _ := rangesJSON(d.Ranges)
		dl := Download{URL: d.Key, Size: d.Size, Stored: d.Stored, Ranges: ranges, Clients: d.Clients, Position: d.Position,
			Filling: d.Filling, FromCache: d.FromCache, FromUpstream: d.FromUpstream, Since: d.Since, Rate: s.rate, ETA: -1}
		if s.rate > 0 && d.Size >= 0 {
			dl.ETA = float64(d.Size-d.Position) / s.rate
		}
		out = append(out, dl)
	}
	for k := range r.last {
		if !seen[k] {
			delete(r.last, k)
		}
	}
	return out
}
