package admin

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry of its own (never the global default: no
// global state) holding resumeproxy's metrics, read from st, the proxy and
// the cache at each scrape, and the Go runtime's and the process's.
// Labels are bounded sets, never a URL or a host.
func NewRegistry(st *Stats, px ProxyView, c *census, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collector{st: st, px: px, census: c},
		st.ttfb,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "resumeproxy_build_info",
			Help:        "Always 1; the labels name the build.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// desc builds a metric description.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descRequests = desc("resumeproxy_requests_total",
		"Client requests by result: hit, partial, miss, revalidated, pass, denied, error, tunnel (CONNECT), purge.", "result")
	descServed = desc("resumeproxy_served_bytes_total",
		"Body bytes sent to clients, by whether they were stored when the request arrived (cache) or not (upstream).", "source")
	descUpstream = desc("resumeproxy_upstream_bytes_total",
		"Body bytes received from upstream servers.")
	descResumes = desc("resumeproxy_resumes_total",
		"Range requests that continued stored bytes upstream, by trigger (client: a request found a partial download; upstream: a download continued after a drop, a pause or a gap) and outcome.",
		"trigger", "outcome")
	descHidden = desc("resumeproxy_upstream_drops_hidden_total",
		"Upstream bodies that failed mid-way and were resumed while their clients stayed connected.")
	descUpErrors = desc("resumeproxy_upstream_errors_total",
		"Failed upstream exchanges by kind: dial (no response), status (5xx, 429, 408), drop (body cut), idle (body stalled).", "kind")
	descAborts = desc("resumeproxy_client_aborts_total",
		"Client requests whose client left before the whole response was sent.")
	descFills = desc("resumeproxy_fills_in_progress",
		"Downloads writing into the cache now.")
	descCacheBytes = desc("resumeproxy_cache_bytes",
		"Body bytes stored, by state of their entry (complete, partial), as of the last index scan (at most 10 s old).", "state")
	descCacheEntries = desc("resumeproxy_cache_entries",
		"Entries stored, by state (complete, partial), as of the last index scan (at most 10 s old).", "state")
	descUsed = desc("resumeproxy_cache_used_bytes",
		"What the cache counts against max_size: bytes stored and index records.")
	descMax = desc("resumeproxy_cache_max_bytes",
		"The cache's max_size.")
	descEvictions = desc("resumeproxy_evictions_total",
		"Entries removed from the cache by reason: ttl (partial, unused for partial_ttl), size (least recently used, over max_size), purge.", "reason")
)

// metricsCensusAge is how old the index scan behind the cache gauges may
// be: a scrape must not scan a large index every time.
const metricsCensusAge = 10 * time.Second

// collector turns Stats, the proxy's and the cache's state into metrics at
// each scrape: one copy of each count, read where it is kept.
type collector struct {
	st     *Stats
	px     ProxyView
	census *census
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descServed, descUpstream, descResumes, descHidden, descUpErrors,
		descAborts, descFills, descCacheBytes, descCacheEntries, descUsed, descMax, descEvictions} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	t := c.st.Totals()
	for _, r := range results {
		counter(descRequests, t.Requests[r], r)
	}
	counter(descServed, t.ServedCache, "cache")
	counter(descServed, t.ServedUpstream, "upstream")
	counter(descUpstream, t.UpstreamBytes)
	for _, tr := range triggers {
		for _, o := range outcomes {
			counter(descResumes, t.Resumes[tr+"/"+o], tr, o)
		}
	}
	counter(descHidden, t.HiddenDrops)
	for _, k := range errorKinds {
		counter(descUpErrors, t.UpstreamErrors[k], k)
	}
	counter(descAborts, t.ClientAborts)
	gauge(descFills, c.px.FillsRunning())
	cs := c.census.get(metricsCensusAge)
	gauge(descCacheBytes, cs.CompleteBytes, "complete")
	gauge(descCacheBytes, cs.PartialBytes, "partial")
	gauge(descCacheEntries, cs.Complete, "complete")
	gauge(descCacheEntries, cs.Partial, "partial")
	u := c.census.cache.Usage()
	gauge(descUsed, u.Used)
	gauge(descMax, u.MaxSize)
	counter(descEvictions, u.EvictedTTL, "ttl")
	counter(descEvictions, u.EvictedSize, "size")
	counter(descEvictions, u.Purged, "purge")
}
