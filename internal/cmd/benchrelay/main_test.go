package main

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestRelay: a GET through the relay gets the origin's status, header and
// body; a request that is not a plain-HTTP proxy request gets a 400.
func TestRelay(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", r.URL.RawQuery)
		io.WriteString(w, body)
	}))
	defer origin.Close()
	relaySrv := httptest.NewServer(relay(&http.Transport{}))
	defer relaySrv.Close()
	proxyURL, _ := url.Parse(relaySrv.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}

	resp, err := c.Get(origin.URL + "/f?i=7")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256([]byte(body)) || resp.Header.Get("X-Origin") != "i=7" {
		t.Fatalf("through the relay: %d, %d bytes, X-Origin %q, err %v; want 200, the origin's %d bytes, i=7",
			resp.StatusCode, len(got), resp.Header.Get("X-Origin"), err, len(body))
	}

	resp, err = http.Get(relaySrv.URL + "/f")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("origin-form request: %d, want 400", resp.StatusCode)
	}
}
