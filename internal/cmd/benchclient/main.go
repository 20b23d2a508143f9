// Command benchclient is the load generator of the benchmark (make bench)
// for the cases a curl process per request would distort: many range
// requests and many small GETs over keep-alive connections, and many
// parallel downloads.
//
// It sends -requests GETs over -conns connections, directly or through
// -proxy. In -url, {i} is replaced by the request's number (0-based), which
// makes every request a distinct URL. With -range-size, each request asks
// for that many bytes at a random offset (seeded by -seed) within
// -file-size, and a reply must be a 206 with the matching Content-Range;
// otherwise a reply must be a 200. Every body is read to its end and its
// length checked against Content-Length.
//
// It prints one line of key=value figures: requests, errors, bytes,
// seconds (wall time of the whole run), mib_per_s, req_per_s, p50_ms and
// p99_ms (per-request latency, until the last body byte). It exits 1 if any
// request failed.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	proxy     string
	url       string
	requests  int
	conns     int
	rangeSize int64
	fileSize  int64
	seed      uint64
	xcache    string
}

// result is what one request measured.
type result struct {
	latency time.Duration
	bytes   int64
	err     error
}

func main() {
	var o options
	flag.StringVar(&o.proxy, "proxy", "", "proxy `URL` (empty: direct to the origin)")
	flag.StringVar(&o.url, "url", "", "`URL` to get; {i} is replaced by the request number")
	flag.IntVar(&o.requests, "requests", 1000, "number of requests")
	flag.IntVar(&o.conns, "conns", 1, "concurrent connections")
	flag.Int64Var(&o.rangeSize, "range-size", 0, "bytes per random range request (0: whole GETs)")
	flag.Int64Var(&o.fileSize, "file-size", 0, "size of the file the ranges fall in")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the range offsets")
	flag.StringVar(&o.xcache, "expect-xcache", "", "X-Cache value every reply must carry (empty: not checked)")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "benchclient:", err)
		os.Exit(2)
	}
	results, wall := run(o)
	if report(os.Stdout, os.Stderr, results, wall) > 0 {
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.url == "":
		return fmt.Errorf("-url is required")
	case o.requests < 1 || o.conns < 1:
		return fmt.Errorf("-requests and -conns must be positive")
	case o.rangeSize < 0 || (o.rangeSize > 0 && o.fileSize < o.rangeSize):
		return fmt.Errorf("-file-size must be at least -range-size")
	}
	return nil
}

// run sends the requests from o.conns workers and returns every result and
// the wall time of the whole run.
func run(o options) ([]result, time.Duration) {
	client := newClient(o)
	offsets := rangeOffsets(o)
	results := make([]result, o.requests)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.conns {
		wg.Go(func() {
			for i := range next {
				results[i] = get(client, o, i, offsets)
			}
		})
	}
	for i := range o.requests {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, time.Since(start)
}

// newClient returns a client whose pool keeps one connection per worker.
func newClient(o options) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        o.conns,
		MaxIdleConnsPerHost: o.conns,
		MaxConnsPerHost:     o.conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if o.proxy != "" {
		u, err := url.Parse(o.proxy)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchclient: -proxy:", err)
			os.Exit(2)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr}
}

// rangeOffsets draws the start of every range request, the same for the
// same seed, so direct and proxied runs ask for the same bytes.
func rangeOffsets(o options) []int64 {
	if o.rangeSize == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(o.seed, 0))
	offs := make([]int64, o.requests)
	for i := range offs {
		offs[i] = rng.Int64N(o.fileSize - o.rangeSize + 1)
	}
	return offs
}

// get sends request i and reads its body to the end.
func get(c *http.Client, o options, i int, offsets []int64) result {
	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, strings.ReplaceAll(o.url, "{i}", strconv.Itoa(i)), nil)
	if err != nil {
		return result{err: err}
	}
	want, wantStatus := "", http.StatusOK
	if offsets != nil {
		first, last := offsets[i], offsets[i]+o.rangeSize-1 // HTTP's inclusive form
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", first, last))
		want, wantStatus = fmt.Sprintf("bytes %d-%d/%d", first, last, o.fileSize), http.StatusPartialContent
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	r := result{latency: time.Since(start), bytes: n, err: err}
	if r.err == nil {
		r.err = checkReply(resp, n, wantStatus, want, o.xcache)
	}
	return r
}

// checkReply reports what is wrong with a reply whose body had n bytes.
func checkReply(resp *http.Response, n int64, status int, contentRange, xcache string) error {
	switch {
	case resp.StatusCode != status:
		return fmt.Errorf("status %d, want %d", resp.StatusCode, status)
	case contentRange != "" && resp.Header.Get("Content-Range") != contentRange:
		return fmt.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), contentRange)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fmt.Errorf("body of %d bytes, Content-Length %d", n, resp.ContentLength)
	case xcache != "" && resp.Header.Get("X-Cache") != xcache:
		return fmt.Errorf("X-Cache %q, want %q", resp.Header.Get("X-Cache"), xcache)
	}
	return nil
}

// report prints the figures to out and the first errors to errw, and
// returns the number of failed requests.
func report(out, errw io.Writer, results []result, wall time.Duration) int {
	var bytes int64
	var failed int
	lat := make([]time.Duration, 0, len(results))
	for _, r := range results {
		if r.err != nil {
			if failed < 5 {
				fmt.Fprintln(errw, "benchclient:", r.err)
			}
			failed++
			continue
		}
		bytes += r.bytes
		lat = append(lat, r.latency)
	}
	slices.Sort(lat)
	secs := wall.Seconds()
	fmt.Fprintf(out, "requests=%d errors=%d bytes=%d seconds=%.4f mib_per_s=%.1f req_per_s=%.1f p50_ms=%.3f p99_ms=%.3f\n",
		len(results), failed, bytes, secs, float64(bytes)/(1<<20)/secs, float64(len(lat))/secs,
		ms(percentile(lat, 50)), ms(percentile(lat, 99)))
	return failed
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
