package testorigin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSize = 300_000 // about nine blocks, not a multiple of any

// client returns an HTTP client with its own transport, closed at cleanup,
// that asks for no compression so byte offsets stay offsets.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fetch sends method to o's path with the header pairs and reads the whole
// body. err is the body's read error: how a client sees a cut response.
func fetch(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// get is fetch with GET that must read the body cleanly.
func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := fetch(t, c, http.MethodGet, url, hdr...)
	if err != nil {
		t.Fatalf("GET %s %v: reading body: %v", url, hdr, err)
	}
	return resp, body
}

// newOrigin returns an origin serving a testSize resource r at /f.
func newOrigin(t *testing.T, r Resource) *Origin {
	o := New(t)
	if r.Size == 0 {
		r.Size = testSize
	}
	o.Set("/f", r)
	return o
}

func TestGetWhole(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 1, CacheControl: "max-age=60", Header: http.Header{"Vary": {"Accept"}}}), client(t)
	if !strings.HasPrefix(o.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %s, want http://127.0.0.1:port", o.URL)
	}
	resp, body := get(t, c, o.URL+"/f")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d, want 200", resp.StatusCode)
	}
	if got, want := Sum(1, int64(len(body))), Sum(1, testSize); got != want || len(body) != testSize || !bytes.Equal(body, bytesOf(1, 0, testSize)) {
		t.Errorf("GET body: %d bytes, sum %s, want %d bytes, sum %s", len(body), got, testSize, want)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil || time.Since(date) > time.Minute {
		t.Errorf("Date = %q, want the real time", resp.Header.Get("Date"))
	}
	lm, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	if date.Sub(lm) < time.Hour {
		t.Errorf("Last-Modified %v is less than an hour before Date %v", lm, date)
	}
	for name, want := range map[string]string{
		"ETag":           `"v1-300000"`,
		"Last-Modified":  "Mon, 01 Jan 2024 01:00:00 GMT",
		"Accept-Ranges":  "bytes",
		"Content-Length": strconv.Itoa(testSize),
		"Cache-Control":  "max-age=60",
		"Vary":           "Accept",
		"Content-Type":   "application/octet-stream",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("GET: %s = %q, want %q", name, got, want)
		}
	}
	if got := o.BodyBytes(); got != testSize {
		t.Errorf("BodyBytes() = %d, want %d", got, testSize)
	}
}

func TestHeadSendsNoBody(t *testing.T) {
	o, c := newOrigin(t, Resource{}), client(t)
	o.DropAt("/f", 10)
	resp, body, err := fetch(t, c, http.MethodHead, o.URL+"/f", "Range", "bytes=0-9")
	if err != nil || resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != testSize {
		t.Fatalf("HEAD = %d, %d bytes, Content-Length %d, %v; want 200, 0, %d", resp.StatusCode, len(body), resp.ContentLength, err, testSize)
	}
	if o.BodyBytes() != 0 {
		t.Errorf("BodyBytes() after HEAD = %d, want 0", o.BodyBytes())
	}
	// The drop was not consumed by HEAD.
	if _, body, err := fetch(t, c, http.MethodGet, o.URL+"/f"); err == nil || len(body) != 10 {
		t.Errorf("GET after HEAD: %d bytes, %v; want 10 bytes and an error", len(body), err)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	o, c := newOrigin(t, Resource{}), client(t)
	if resp, _ := get(t, c, o.URL+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
	resp, _, _ := fetch(t, c, http.MethodPost, o.URL+"/f")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Date") == "" {
		t.Errorf("POST = %d (Date %q), want 405 with Date", resp.StatusCode, resp.Header.Get("Date"))
	}
	if o.BodyBytes() != 0 {
		t.Errorf("BodyBytes() = %d, want 0: error bodies are not content", o.BodyBytes())
	}
}

func TestRange(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		o, c := newOrigin(t, Resource{Version: 2, Chunked: chunked}), client(t)
		var total int64
		for _, tc := range []struct {
			rng        string
			start, end int64
		}{
			{"bytes=0-0", 0, 1},
			{"bytes=10-19", 10, 20},
			{"bytes=70000-", 70000, testSize},
			{"bytes=-5", testSize - 5, testSize},
			{"bytes=299990-999999", 299990, testSize},
		} {
			resp, body := get(t, c, o.URL+"/f", "Range", tc.rng)
			wantCR := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end-1, testSize)
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR {
				t.Errorf("chunked=%v Range %s = %d %q, want 206 %q", chunked, tc.rng, resp.StatusCode, resp.Header.Get("Content-Range"), wantCR)
			}
			if !bytes.Equal(body, bytesOf(2, tc.start, tc.end-tc.start)) {
				t.Errorf("chunked=%v Range %s: body is not bytes [%d,%d)", chunked, tc.rng, tc.start, tc.end)
			}
			if wantCL := tc.end - tc.start; !chunked && resp.ContentLength != wantCL || chunked && resp.ContentLength != -1 {
				t.Errorf("chunked=%v Range %s: ContentLength = %d", chunked, tc.rng, resp.ContentLength)
			}
			total += tc.end - tc.start
		}
		if o.PathBodyBytes("/f") != total || o.BodyBytes() != total {
			t.Errorf("chunked=%v: PathBodyBytes = %d, BodyBytes = %d, want %d", chunked, o.PathBodyBytes("/f"), o.BodyBytes(), total)
		}
	}
}

func TestRangeIgnoredOrRefused(t *testing.T) {
	o, c := newOrigin(t, Resource{}), client(t)
	for _, rng := range []string{"bytes=0-1,5-6", "bytes=5-1", "bytes=x-", "pages=1-2"} {
		if resp, body := get(t, c, o.URL+"/f", "Range", rng); resp.StatusCode != http.StatusOK || len(body) != testSize {
			t.Errorf("Range %s = %d with %d bytes, want 200 with %d", rng, resp.StatusCode, len(body), testSize)
		}
	}
	resp, _ := get(t, c, o.URL+"/f", "Range", "bytes=300000-")
	if want := "bytes */300000"; resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != want {
		t.Errorf("Range past end = %d %q, want 416 %q", resp.StatusCode, resp.Header.Get("Content-Range"), want)
	}

	o.Set("/plain", Resource{Size: 100, IgnoreRange: true})
	resp, body := get(t, c, o.URL+"/plain", "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusOK || len(body) != 100 || resp.Header.Get("Accept-Ranges") != "none" {
		t.Errorf("IgnoreRange: %d, %d bytes, Accept-Ranges %q; want 200, 100, none", resp.StatusCode, len(body), resp.Header.Get("Accept-Ranges"))
	}
}

func TestConditionals(t *testing.T) {
	o, c := New(t), client(t)
	o.Set("/strong", Resource{Size: 1000, Version: 1})
	o.Set("/weak", Resource{Size: 1000, Version: 1, Validators: WeakETag})
	o.Set("/lm", Resource{Size: 1000, Version: 1, Validators: LastModifiedOnly})
	o.Set("/none", Resource{Size: 1000, Version: 1, Validators: NoValidator})
	lm := Resource{Version: 1, Validators: LastModifiedOnly}.LastModified().Format(http.TimeFormat)
	for _, tc := range []struct {
		path   string
		hdr    []string
		status int
	}{
		{"/strong", []string{"Range", "bytes=500-", "If-Range", `"v1-1000"`}, 206},
		{"/strong", []string{"Range", "bytes=500-", "If-Range", `"v0-1000"`}, 200},
		{"/weak", []string{"Range", "bytes=500-", "If-Range", `W/"v1-1000"`}, 200},
		{"/lm", []string{"Range", "bytes=500-", "If-Range", lm}, 206},
		{"/lm", []string{"Range", "bytes=500-", "If-Range", "Mon, 01 Jan 2024 00:00:00 GMT"}, 200},
		{"/none", []string{"Range", "bytes=500-"}, 206},
		{"/strong", []string{"If-Match", `"v0-1000"`}, 412},
		{"/strong", []string{"If-Match", `"v1-1000"`, "Range", "bytes=0-9"}, 206},
		{"/weak", []string{"If-Match", `W/"v1-1000"`}, 412},
		{"/strong", []string{"If-None-Match", `"v1-1000"`}, 304},
		{"/weak", []string{"If-None-Match", `"v1-1000"`}, 304},
		{"/lm", []string{"If-Modified-Since", lm}, 304},
		{"/lm", []string{"If-Unmodified-Since", "Sun, 31 Dec 2023 00:00:00 GMT"}, 412},
	} {
		resp, body := get(t, c, o.URL+tc.path, tc.hdr...)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s %q = %d, want %d", tc.path, tc.hdr, resp.StatusCode, tc.status)
		}
		if tc.status == 304 && (len(body) != 0 || resp.Header.Get("Date") == "") {
			t.Errorf("GET %s %q: 304 with %d body bytes, Date %q", tc.path, tc.hdr, len(body), resp.Header.Get("Date"))
		}
	}
}

// TestDropAt checks that a client of a dropped response sees an error after
// exactly the bytes before the offset, for full, ranged and chunked bodies.
func TestDropAt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chunked bool
		rng     string
		start   int64
		drop    int64
		want    int64 // bytes the client gets
	}{
		{"full", false, "", 0, 100_001, 100_001},
		{"full chunked", true, "", 0, 100_001, 100_001},
		{"at zero", false, "", 0, 0, 0},
		{"ranged", false, "bytes=70000-", 70000, 200_000, 130_000},
		{"ranged chunked", true, "bytes=70000-", 70000, 200_000, 130_000},
		{"range starts past offset", false, "bytes=70000-", 70000, 5, 0},
		{"range starts past offset chunked", true, "bytes=70000-", 70000, 5, 0},
		{"at end chunked", true, "", 0, testSize, testSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, c := newOrigin(t, Resource{Version: 3, Chunked: tc.chunked}), client(t)
			o.DropAt("/f", tc.drop)
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			_, body, err := fetch(t, c, http.MethodGet, o.URL+"/f", hdr...)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading body: error %v, want %v", err, io.ErrUnexpectedEOF)
			}
			if !bytes.Equal(body, bytesOf(3, tc.start, tc.want)) {
				t.Errorf("body = %d bytes, want the %d bytes [%d,%d)", len(body), tc.want, tc.start, tc.start+tc.want)
			}
			if got := o.PathBodyBytes("/f"); got != tc.want {
				t.Errorf("PathBodyBytes = %d, want %d", got, tc.want)
			}
			if _, body := get(t, c, o.URL+"/f"); len(body) != testSize {
				t.Errorf("GET after the drop: %d bytes, want %d", len(body), testSize)
			}
		})
	}
}

// TestDropAtResume is the proxy's use: several drops, each resumed with
// Range and If-Range, add up to exactly the whole file, fetched once.
func TestDropAtResume(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 4}), client(t)
	o.DropAt("/f", 50_000, 50_000, 200_123)
	var got []byte
	var errs int
	for range 5 {
		resp, body, err := fetch(t, c, http.MethodGet, o.URL+"/f",
			"Range", fmt.Sprintf("bytes=%d-", len(got)), "If-Range", `"v4-300000"`)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("resume at %d = %d, want 206", len(got), resp.StatusCode)
		}
		got = append(got, body...)
		if err == nil {
			break
		}
		errs++
	}
	if errs != 3 || Sum(4, testSize) != Sum(4, int64(len(got))) || !bytes.Equal(got, bytesOf(4, 0, testSize)) {
		t.Errorf("after %d cut responses got %d bytes, want 3 cuts and the whole file", errs, len(got))
	}
	if n := o.BodyBytes(); n != testSize {
		t.Errorf("BodyBytes() = %d, want %d: every byte sent once", n, testSize)
	}
	if n := len(o.Requests("/f")); n != 4 {
		t.Errorf("len(Requests) = %d, want 4", n)
	}
}

func TestDropAfter(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 5}), client(t)
	o.DropAfter("/f", 1000, 2)
	for i, start := range []int64{0, 1000} {
		_, body, err := fetch(t, c, http.MethodGet, o.URL+"/f", "Range", fmt.Sprintf("bytes=%d-", start))
		if err == nil || !bytes.Equal(body, bytesOf(5, start, 1000)) {
			t.Errorf("response %d: %d bytes, error %v; want bytes [%d,%d) then an error", i, len(body), err, start, start+1000)
		}
	}
	if _, body := get(t, c, o.URL+"/f", "Range", "bytes=2000-"); !bytes.Equal(body, bytesOf(5, 2000, testSize-2000)) {
		t.Errorf("third response: %d bytes, want the rest of the file", len(body))
	}
	if n := o.BodyBytes(); n != testSize {
		t.Errorf("BodyBytes() = %d, want %d", n, testSize)
	}
}

func TestFailNext(t *testing.T) {
	o, c := newOrigin(t, Resource{}), client(t)
	o.FailNext("/f", http.StatusServiceUnavailable, 2)
	o.FailNext("/nope", http.StatusBadGateway, 1)
	for i := range 2 {
		resp, body := get(t, c, o.URL+"/f")
		if resp.StatusCode != http.StatusServiceUnavailable || len(body) == 0 || len(body) > 100 {
			t.Errorf("request %d = %d with %d bytes, want 503 with a short body", i, resp.StatusCode, len(body))
		}
	}
	if resp, body := get(t, c, o.URL+"/f"); resp.StatusCode != http.StatusOK || len(body) != testSize {
		t.Errorf("third request = %d with %d bytes, want 200 with %d", resp.StatusCode, len(body), testSize)
	}
	if resp, _ := get(t, c, o.URL+"/nope"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET /nope = %d, want the injected 502", resp.StatusCode)
	}
	if n := o.BodyBytes(); n != testSize {
		t.Errorf("BodyBytes() = %d, want %d", n, testSize)
	}
}

func TestLieContentRange(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 6}), client(t)
	o.LieContentRange("/f", 7)
	// A 200 does not consume the lie.
	if resp, _ := get(t, c, o.URL+"/f"); resp.Header.Get("Content-Range") != "" {
		t.Errorf("200 carries Content-Range %q", resp.Header.Get("Content-Range"))
	}
	resp, body := get(t, c, o.URL+"/f", "Range", "bytes=100-199")
	if got, want := resp.Header.Get("Content-Range"), "bytes 107-206/300000"; got != want {
		t.Errorf("lying Content-Range = %q, want %q", got, want)
	}
	if !bytes.Equal(body, bytesOf(6, 100, 100)) {
		t.Errorf("lying response body is not the true bytes [100,200)")
	}
	if resp, _ := get(t, c, o.URL+"/f", "Range", "bytes=100-199"); resp.Header.Get("Content-Range") != "bytes 100-199/300000" {
		t.Errorf("second 206 Content-Range = %q, want the truth", resp.Header.Get("Content-Range"))
	}
}

func TestChangeVersionAt(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 1}), client(t)
	o.ChangeVersionAt("/f", 100_000)
	resp, body, err := fetch(t, c, http.MethodGet, o.URL+"/f")
	if err == nil || resp.Header.Get("ETag") != `"v1-300000"` || !bytes.Equal(body, bytesOf(1, 0, 100_000)) {
		t.Fatalf("first response: ETag %s, %d bytes, error %v; want v1, 100000 bytes of v1, an error",
			resp.Header.Get("ETag"), len(body), err)
	}
	if r, _ := o.Resource("/f"); r.Version != 2 {
		t.Errorf("Resource version after the cut = %d, want 2", r.Version)
	}
	// The resume finds a new file: If-Range fails and the whole v2 comes back.
	resp, body = get(t, c, o.URL+"/f", "Range", "bytes=100000-", "If-Range", `"v1-300000"`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"v2-300000"` || !bytes.Equal(body, bytesOf(2, 0, testSize)) {
		t.Errorf("resume after change = %d, ETag %s, %d bytes; want 200 with the whole v2", resp.StatusCode, resp.Header.Get("ETag"), len(body))
	}
	o.SetVersion("/f", 9)
	if resp, _ := get(t, c, o.URL+"/f", "If-Match", `"v2-300000"`); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("If-Match old tag after SetVersion = %d, want 412", resp.StatusCode)
	}
}

// TestStallAt checks that a stalled response holds its bytes back until the
// client gives up, and that the handler is then released.
func TestStallAt(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 7}), client(t)
	stallEnded := make(chan struct{}, 1)
	o.mu.Lock()
	o.stallEnded = stallEnded
	o.mu.Unlock()
	o.StallAt("/f", 65_000)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/f", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 65_000)
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, bytesOf(7, 0, 65_000)) {
		t.Fatalf("reading up to the stall: %v", err)
	}
	cancel()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Errorf("Read after cancel: no error")
	}
	<-stallEnded // hangs (and go test -timeout reports it) if the stall ignores the client
	if n := o.PathBodyBytes("/f"); n != 65_000 {
		t.Errorf("PathBodyBytes = %d, want 65000", n)
	}
}

// TestDrip checks that a dripped response arrives n bytes at a time, each
// flushed at once, paced by the interval, complete and counted.
func TestDrip(t *testing.T) {
	const size, n, every = 100, 10, 30 * time.Millisecond
	o, c := newOrigin(t, Resource{Size: size, Version: 3}), client(t)
	o.Drip("/f", n, every)
	start := time.Now()
	resp, err := c.Get(o.URL + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, bytesOf(3, 0, n)) {
		t.Fatalf("first %d bytes: %v", n, err)
	}
	if took := time.Since(start); took >= every*(size/n-1) {
		t.Errorf("first %d bytes took %v, want them before the rest (%v)", n, took, every*(size/n-1))
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(rest, bytesOf(3, n, size-n)) {
		t.Fatalf("rest: %d bytes, %v", len(rest), err)
	}
	if took := time.Since(start); took < every*(size/n-1) {
		t.Errorf("whole body took %v, want at least %v (%d pauses of %v)", took, every*(size/n-1), size/n-1, every)
	}
	if got := o.PathBodyBytes("/f"); got != size {
		t.Errorf("PathBodyBytes = %d, want %d", got, size)
	}
	wantFullSpeed(t, o, c, size)
}

// wantFullSpeed checks that a Drip was consumed: the next response for /f
// comes at once and whole.
func wantFullSpeed(t *testing.T, o *Origin, c *http.Client, size int) {
	t.Helper()
	start := time.Now()
	_, body := get(t, c, o.URL+"/f")
	if len(body) != size {
		t.Errorf("next response: %d bytes, want %d", len(body), size)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("next response took %v: still dripping", took)
	}
}

// TestStallReleasedByClose checks that a stall ends when the origin closes,
// so a test that forgets its client does not hang in cleanup.
func TestStallReleasedByClose(t *testing.T) {
	ended := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	t.Run("origin", func(t *testing.T) {
		o, c := newOrigin(t, Resource{}), client(t)
		o.mu.Lock()
		o.stallEnded = ended
		o.mu.Unlock()
		o.StallAt("/f", 10)
		resp, err := c.Get(o.URL + "/f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			readErr <- err
		}()
	})
	<-ended
	if err := <-readErr; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("client of a stalled response after close: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

func TestConcurrentAccounting(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 8}), client(t)
	o.Set("/g", Resource{Size: 123_457, Version: 8, Chunked: true})
	var wg sync.WaitGroup
	var total, totalG int64
	for i := range 16 {
		start := int64(i) * 10_007
		total += testSize - start
		totalG += 123_457
		wg.Go(func() {
			_, body, err := fetch(t, c, http.MethodGet, o.URL+"/f", "Range", fmt.Sprintf("bytes=%d-", start))
			if err != nil || !bytes.Equal(body, bytesOf(8, start, testSize-start)) {
				t.Errorf("concurrent GET from %d: %d bytes, %v", start, len(body), err)
			}
			if _, body, err := fetch(t, c, http.MethodGet, o.URL+"/g"); err != nil || len(body) != 123_457 {
				t.Errorf("concurrent GET /g: %d bytes, %v", len(body), err)
			}
		})
	}
	wg.Wait()
	if o.PathBodyBytes("/f") != total || o.PathBodyBytes("/g") != totalG || o.BodyBytes() != total+totalG {
		t.Errorf("PathBodyBytes = %d and %d, BodyBytes = %d; want %d, %d, %d",
			o.PathBodyBytes("/f"), o.PathBodyBytes("/g"), o.BodyBytes(), total, totalG, total+totalG)
	}
	if n := len(o.Requests("/f")); n != 16 {
		t.Errorf("len(Requests(/f)) = %d, want 16", n)
	}
}

func TestRequestsAndReset(t *testing.T) {
	o, c := newOrigin(t, Resource{}), client(t)
	get(t, c, o.URL+"/f", "Range", "bytes=0-9")
	fetch(t, c, http.MethodHead, o.URL+"/f", "If-None-Match", `"x"`)
	reqs := o.Requests("/f")
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Header.Get("Range") != "bytes=0-9" ||
		reqs[1].Method != "HEAD" || reqs[1].Header.Get("If-None-Match") != `"x"` {
		t.Errorf("Requests = %+v, want the GET with Range then the HEAD", reqs)
	}
	reqs[0].Header.Set("Range", "changed")
	if o.Requests("/f")[0].Header.Get("Range") != "bytes=0-9" {
		t.Errorf("Requests returned the origin's own header map")
	}
	o.ResetCounts()
	if o.BodyBytes() != 0 || o.PathBodyBytes("/f") != 0 || len(o.Requests("/f")) != 0 {
		t.Errorf("after ResetCounts: BodyBytes %d, PathBodyBytes %d, %d requests", o.BodyBytes(), o.PathBodyBytes("/f"), len(o.Requests("/f")))
	}
}

// TestRatePerConnection: a Rate limits each response, not the origin: two
// responses at once take as long as one, and MaxConcurrent sees both.
func TestRatePerConnection(t *testing.T) {
	o := New(t)
	o.Set("/r", Resource{Size: 256 << 10, Rate: 1 << 20}) // 250 ms each
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := http.Get(o.URL + "/r")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if n, err := io.Copy(io.Discard, resp.Body); n != 256<<10 || err != nil {
				t.Errorf("read %d bytes, %v", n, err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("two 256 KiB responses at 1 MiB/s each took %v, want about 250ms", d)
	}
	if n := o.MaxConcurrent("/r"); n != 2 {
		t.Errorf("MaxConcurrent = %d, want 2", n)
	}
}
