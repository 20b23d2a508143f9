package admin

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy"
)

// ProxyView is what the admin surface reads of the proxy (*proxy.Proxy).
type ProxyView interface {
	// Downloads lists the entries being read or filled now.
	Downloads() []proxy.Download
	// FillsRunning counts the downloads writing into the cache.
	FillsRunning() int64
}

// CacheView is what the admin surface reads and changes of the cache
// (*cache.Store).
type CacheView interface {
	List(fn func(cache.Info) bool) error
	Purge(key string) (bool, error)
	PurgePrefix(prefix string) ([]string, error)
	Verify(bad func(key string, block int64)) (cache.VerifyReport, error)
	Usage() cache.Usage
}

// maxPartials bounds the partial entries the status page draws.
const maxPartials = 50

// Census is what one scan of the index found.
type Census struct {
	Complete, Partial           int64
	CompleteBytes, PartialBytes int64
	// Partials are the most recently used partial entries, at most 50.
	Partials []cache.Info
	// Err is the scan's error, if any.
	Err error
}

// census caches the last scan of the index: the metrics and the status
// page ask often, and a scan reads every record.
type census struct {
	cache CacheView
	now   func() time.Time

	// mu guards at and last, and is held across a scan, so that callers
	// share one.
	mu   sync.Mutex
	at   time.Time
	last Census
}

// get returns a scan at most maxAge old, scanning now if needed.
func (c *census) get(maxAge time.Duration) Census {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < maxAge {
		return c.last
	}
	var cs Census
	cs.Err = c.cache.List(func(i cache.Info) bool {
		if i.Complete {
			cs.Complete++
			cs.CompleteBytes += i.Stored
			return true
		}
		cs.Partial++
		cs.PartialBytes += i.Stored
		cs.Partials = append(cs.Partials, i)
		if len(cs.Partials) >= 4*maxPartials { // bounded memory, however many
			cs.Partials = mostRecent(cs.Partials)
		}
		return true
	})
	cs.Partials = mostRecent(cs.Partials)
	c.at, c.last = c.now(), cs
	return cs
}

// mostRecent keeps the maxPartials most recently used of is.
func mostRecent(is []cache.Info) []cache.Info {
	slices.SortFunc(is, func(a, b cache.Info) int {
		return cmp.Or(b.LastUse.Compare(a.LastUse), cmp.Compare(a.Key, b.Key))
	})
	return slices.Clip(is[:min(len(is), maxPartials)])
}
