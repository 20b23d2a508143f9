package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/admin"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// chromiumPath returns Debian's chromium. The browser test never skips:
// CI installs it (scripts/install-test-deps.sh), and a developer without
// it is told how to get it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the status page test needs Debian's chromium (apt-get install -y chromium; make test installs it)")
	return ""
}

// chromium runs headless chromium on args with a fresh profile, no proxy,
// and returns its standard output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = cleanEnv("HOME=" + t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// apiStatus reads p's /api/status.
func apiStatus(t *testing.T, p *proxyProc) admin.Status {
	t.Helper()
	resp, err := direct.Get(p.URL() + "/api/status")
	if err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	defer resp.Body.Close()
	var st admin.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	return st
}

// waitStatus polls /api/status until ok holds, or fails after 15 s.
func waitStatus(t *testing.T, p *proxyProc, what string, ok func(admin.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for st := apiStatus(t, p); !ok(st); st = apiStatus(t, p) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rowOf returns the part of dom from the row whose data-url is u to the
// next row.
func rowOf(t *testing.T, dom, class, u string) string {
	t.Helper()
	mark := `class="row ` + class + `" data-url="` + u + `"`
	i := strings.Index(dom, mark)
	if i < 0 {
		t.Fatalf("the page has no %s row for %s:\n%s", class, u, dom)
	}
	row := dom[i+len(mark):]
	if j := strings.Index(row, `class="row `); j >= 0 {
		row = row[:j]
	}
	return row
}

var sentWidth = regexp.MustCompile(`class="sent" style="width: ([0-9.]+)%`)

// progressOf returns the width, in percent, of a download's progress bar
// in dom.
func progressOf(t *testing.T, dom, u string) float64 {
	t.Helper()
	row := rowOf(t, dom, "dl", u)
	m := sentWidth.FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("the download row of %s has no progress bar:\n%s", u, row)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestE2EStatusPageInBrowser opens the status page in headless chromium
// while a slow download runs and a partial download is kept: in the DOM
// the download's progress bar moves between two loads, and the partial's
// range map shows the bytes it holds. Screenshots at 1280×800 and at
// phone width go to the test's artifact directory (go test -artifacts),
// and to $RESUMEPROXY_SCREENSHOT_DIR when set (docs/status-page.png).
func TestE2EStatusPageInBrowser(t *testing.T) {
	t.Parallel()
	bin := chromiumPath(t)
	const half, kept = 8 << 20, 3 << 20
	o := testorigin.New(t)
	// A slow download: 1 MiB/s per connection, at most 4 MiB/s over the
	// proxy's segments; 96 MiB outlast the test.
	o.Set("/iso/debian-13.2.0-amd64-netinst.iso", testorigin.Resource{Size: 96 << 20, CacheControl: cacheFor, Rate: 1 << 20})
	o.Set("/iso/ubuntu-24.04.3-live-server-amd64.iso", testorigin.Resource{Size: half, CacheControl: cacheFor})
	p := startProxy(t, t.TempDir())
	c := viaProxy(p)
	slow, partial := o.URL+"/iso/debian-13.2.0-amd64-netinst.iso", o.URL+"/iso/ubuntu-24.04.3-live-server-amd64.iso"

	// Something served from the cache, for the totals: a miss, then a hit.
	o.Set("/pool/main/h/hello/hello_2.10-3_amd64.deb", testorigin.Resource{Size: 2 << 20, CacheControl: cacheFor})
	fetch(t, c, o.URL+"/pool/main/h/hello/hello_2.10-3_amd64.deb", -1)
	fetch(t, c, o.URL+"/pool/main/h/hello/hello_2.10-3_amd64.deb", -1)

	// A partial entry: a client leaves a slow download at 3 MiB.
	o.Drip("/iso/ubuntu-24.04.3-live-server-amd64.iso", 16<<10, 2*time.Millisecond)
	fetch(t, c, partial, kept)
	waitStatus(t, p, "the partial entry", func(st admin.Status) bool {
		return len(st.Partials) == 1 && st.Partials[0].URL == partial && st.Cache.Fills == 0
	})

	// The slow download under way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow, nil)
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	defer func() { cancel(); <-done }()
	waitStatus(t, p, "the slow download", func(st admin.Status) bool {
		return len(st.Downloads) == 1 && st.Downloads[0].Position > 0
	})

	page := p.URL() + "/"
	dump := func() string { return chromium(t, bin, "--virtual-time-budget=2500", "--dump-dom", page) }
	first := dump()
	time.Sleep(1500 * time.Millisecond)
	second := dump()
	p1, p2 := progressOf(t, first, slow), progressOf(t, second, slow)
	if !(0 < p1 && p1 < p2 && p2 < 100) {
		t.Errorf("progress bar of the slow download: %.2f%% then %.2f%%, want it to move forward (0 < first < second < 100)", p1, p2)
	}
	if !strings.Contains(rowOf(t, second, "dl", slow), "1 client") {
		t.Errorf("the download row does not say it has 1 client:\n%s", rowOf(t, second, "dl", slow))
	}

	row := rowOf(t, second, "entry", partial)
	m := regexp.MustCompile(`data-ranges="0-([0-9]+)"`).FindStringSubmatch(row)
	if m == nil || !strings.Contains(row, `<span class="r" style="left: 0%; width: `) {
		t.Fatalf("the partial's range map does not show one range from byte 0:\n%s", row)
	}
	if end, _ := strconv.ParseInt(m[1], 10, 64); end < kept || end >= half {
		t.Errorf("the partial's range map shows bytes 0-%d, want from 0 to at least %d and short of %d", end, kept, half)
	}

	// Screenshots: the artefact of this test, and the README's.
	dir := t.ArtifactDir()
	for _, shot := range []struct{ name, size string }{{"status-1280x800.png", "1280,800"}, {"status-phone.png", "390,844"}} {
		path := filepath.Join(dir, shot.name)
		chromium(t, bin, "--virtual-time-budget=2500", "--window-size="+shot.size, "--screenshot="+path, page)
		if fi, err := os.Stat(path); err != nil || fi.Size() < 10<<10 {
			t.Errorf("screenshot %s: %v, want a PNG of some size", path, err)
		}
		if out := os.Getenv("RESUMEPROXY_SCREENSHOT_DIR"); out != "" {
			b, err := os.ReadFile(path)
			if err == nil {
				err = os.WriteFile(filepath.Join(out, shot.name), b, 0o644)
			}
			if err != nil {
				t.Errorf("copy screenshot: %v", err)
			}
		}
	}
	t.Logf("screenshots in %s", dir)
}
