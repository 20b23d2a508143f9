// Package admin is resumeproxy's admin surface: the live status page, the
// Prometheus metrics, the JSON API that the status page and the ls, purge
// and verify commands use, and PURGE. It reads the proxy and the cache
// through small interfaces (ProxyView, CacheView) and learns what happens
// through proxy.Observer, which Stats implements; main wires them. The
// proxy never imports it.
package admin

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumeproxy/resumeproxy/proxy"
)

// results are the values of resumeproxy_requests_total's result label, in
// the order the status page lists them.
var results = []string{
	proxy.ResultHit, proxy.ResultPartial, proxy.ResultMiss, proxy.ResultRevalidated,
	proxy.ResultPass, proxy.ResultDenied, proxy.ResultError, proxy.ResultTunnel, proxy.ResultPurge,
}

// triggers and outcomes label resumeproxy_resumes_total.
var (
	triggers = []string{proxy.ResumeClient, proxy.ResumeUpstream}
	outcomes = []string{proxy.ResumeOK, proxy.ResumeChanged, proxy.ResumeFailed}
)

// errorKinds label resumeproxy_upstream_errors_total.
var errorKinds = []string{proxy.UpstreamDial, proxy.UpstreamStatus, proxy.UpstreamDrop, proxy.UpstreamIdle}

// recentErrors is how many upstream failures the status page lists.
const recentErrors = 20

// Stats counts what the proxy reports (it is the proxy.Observer main
// gives it): the one copy of every counter, which the metrics (Collector)
// and the status page (Totals) both read. The zero value is not usable:
// NewStats.
type Stats struct {
	started time.Time

	requests                  [9]atomic.Int64 // by results' index
	servedCache, servedUp     atomic.Int64
	upstreamBytes             atomic.Int64
	resumes                   [2][3]atomic.Int64 // triggers × outcomes
	upErrors                  [4]atomic.Int64    // by errorKinds' index
	clientAborts, hiddenDrops atomic.Int64
	ttfb                      prometheus.Histogram

	// mu guards recent: the last upstream failures, oldest first.
	mu     sync.Mutex
	recent []proxy.UpstreamFailure
}

// NewStats returns Stats with every counter at zero, started at now.
func NewStats(now time.Time) *Stats {
	return &Stats{
		started: now,
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "resumeproxy_ttfb_seconds",
			Help: "Time from a client request's arrival to its response header, in seconds.",
			// 1 ms (a hit) to about 30 s (a slow origin).
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
}

var _ proxy.Observer = (*Stats)(nil)

// RequestDone counts one finished request.
func (s *Stats) RequestDone(r proxy.AccessRecord) {
	if i := slices.Index(results, r.Result); i >= 0 {
		s.requests[i].Add(1)
	}
	s.servedCache.Add(r.FromCache)
	s.servedUp.Add(r.FromUpstream)
	if r.ClientAborted {
		s.clientAborts.Add(1)
	}
	if r.FirstByte > 0 && r.Result != proxy.ResultTunnel {
		s.ttfb.Observe(r.FirstByte.Seconds())
	}
}

// UpstreamBytes counts body bytes received from upstream.
func (s *Stats) UpstreamBytes(n int64) { s.upstreamBytes.Add(n) }

// UpstreamError counts a failure and keeps it among the recent ones.
func (s *Stats) UpstreamError(f proxy.UpstreamFailure) {
	if i := slices.Index(errorKinds, f.Kind); i >= 0 {
		s.upErrors[i].Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) == recentErrors {
		s.recent = slices.Delete(s.recent, 0, 1)
	}
	s.recent = append(s.recent, f)
}

// Resume counts a resume by trigger and outcome.
func (s *Stats) Resume(trigger, outcome string) {
	t, o := slices.Index(triggers, trigger), slices.Index(outcomes, outcome)
	if t >= 0 && o >= 0 {
		s.resumes[t][o].Add(1)
	}
}

// HiddenDrop counts an upstream drop its clients never saw.
func (s *Stats) HiddenDrop() { s.hiddenDrops.Add(1) }

// Totals are the counters since start, as the status page shows them.
type Totals struct {
	Started  time.Time        `json:"started"`
	Requests map[string]int64 `json:"requests"`
	// ServedCache and ServedUpstream are body bytes sent to clients; the
	// first are the bytes saved: nothing was fetched for them.
	ServedCache    int64            `json:"served_cache"`
	ServedUpstream int64            `json:"served_upstream"`
	UpstreamBytes  int64            `json:"upstream_bytes"`
	Resumes        map[string]int64 `json:"resumes"` // "trigger/outcome"
	HiddenDrops    int64            `json:"hidden_drops"`
	ClientAborts   int64            `json:"client_aborts"`
	UpstreamErrors map[string]int64 `json:"upstream_errors"`
}

// Totals returns the counters now.
func (s *Stats) Totals() Totals {
	t := Totals{
		Started: s.started, Requests: map[string]int64{}, Resumes: map[string]int64{}, UpstreamErrors: map[string]int64{},
		ServedCache: s.servedCache.Load(), ServedUpstream: s.servedUp.Load(), UpstreamBytes: s.upstreamBytes.Load(),
		HiddenDrops: s.hiddenDrops.Load(), ClientAborts: s.clientAborts.Load(),
	}
	for i, r := range results {
		t.Requests[r] = s.requests[i].Load()
	}
	for i, tr := range triggers {
		for j, o := range outcomes {
			t.Resumes[tr+"/"+o] = s.resumes[i][j].Load()
		}
	}
	for i, k := range errorKinds {
		t.UpstreamErrors[k] = s.upErrors[i].Load()
	}
	return t
}

// RecentErrors returns the last upstream failures, newest first.
func (s *Stats) RecentErrors() []proxy.UpstreamFailure {
	s.mu.Lock()
	out := slices.Clone(s.recent)
	s.mu.Unlock()
	slices.Reverse(out)
	return out
}
