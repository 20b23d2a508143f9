package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
)

// Client reaches a running proxy's admin API: what ls, purge and verify
// use while the proxy holds the cache. It never goes through a proxy from
// the environment (that would usually be this one, in absolute form).
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the admin API at addr (host:port; an
// unspecified host means this machine), sending token when set.
func NewClient(addr, token string) (*Client, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	return &Client{
		base:  "http://" + net.JoinHostPort(host, port),
		token: token,
		hc:    &http.Client{Transport: tr, Timeout: 30 * time.Minute}, // verify reads the whole cache
	}, nil
}

// Addr is the base URL the client talks to.
func (c *Client) Addr() string { return c.base }

// do sends one API request and decodes its JSON answer into out.
func (c *Client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("admin API at %s: %s %s: %w", c.base, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return fmt.Errorf("admin API at %s: %s %s: %s: %s", c.base, method, path, resp.Status, e.Error)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API at %s: %s %s: %w", c.base, method, path, err)
	}
	return nil
}

// Info asks which proxy this is.
func (c *Client) Info() (Info, error) {
	var i Info
	return i, c.do(http.MethodGet, "/api/info", nil, &i)
}

// List calls fn for every entry, in key order, until it returns false.
func (c *Client) List(fn func(cache.Info) bool) error {
	var res Entries
	if err := c.do(http.MethodGet, "/api/entries", nil, &res); err != nil {
		return err
	}
	for _, e := range res.Entries {
		if !fn(e.Info()) {
			break
		}
	}
	return nil
}

// Purge removes key (an absolute URL) and reports whether it was cached.
func (c *Client) Purge(key string) (bool, error) {
	var res PurgeResult
	err := c.do(http.MethodPost, "/api/purge", purgeRequest{URL: key}, &res)
	return len(res.Purged) > 0, err
}

// PurgePrefix removes every key that starts with prefix.
func (c *Client) PurgePrefix(prefix string) ([]string, error) {
	if prefix == "" {
		return nil, errors.New("admin: purge: empty prefix")
	}
	var res PurgeResult
	err := c.do(http.MethodPost, "/api/purge", purgeRequest{Prefix: prefix}, &res)
	return res.Purged, err
}

// Verify has the proxy check every stored block; bad is called for each
// one it dropped.
func (c *Client) Verify(bad func(key string, block int64)) (cache.VerifyReport, error) {
	var res VerifyResult
	err := c.do(http.MethodPost, "/api/verify", struct{}{}, &res)
	for _, b := range res.Dropped {
		bad(b.URL, b.Block)
	}
	return cache.VerifyReport{Entries: res.Entries, Blocks: res.Blocks, Bad: res.Bad}, err
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
