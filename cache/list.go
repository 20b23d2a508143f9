package cache

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// Info is what List tells of one stored version: what an operator needs
// to see what the cache holds (resumeproxy ls, the admin API), not what
// serving takes.
type Info struct {
	// Key is the resource's key (the proxy's: its absolute URL), whole
	// even when the index holds it under its hash.
	Key string
	// Hashed is set for a key over 4 KiB, which the index holds under its
	// SHA-256 (the record keeps the key).
	Hashed bool
	// Size is the complete length of the body; -1 while unknown.
	Size int64
	// Stored is the body bytes present, as the index claims them (a
	// download under way shows its last checkpoint).
	Stored int64
	// Complete is set when every byte of the body is stored; a partial
	// version is what a next request resumes.
	Complete bool
	// LastUse is when the version was last looked up, or created.
	LastUse time.Time
	// Ranges are the bytes Stored counts, as the index claims them: the
	// status page draws a partial download's range map from them.
	Ranges rangeutil.Set
}

// List calls fn for every version in the index, in key order (keys over
// 4 KiB last), until fn returns false. Records that do not decode are
// left out (a lookup reports them). fn runs during the scan, inside a
// read transaction of the index: it must not call the Store.
func (s *Store) List(fn func(Info) bool) error {
	s.mu.Lock()
	touched := make(map[string]touch, len(s.touched)) // lookups not yet persisted
	for k, t := range s.touched {
		touched[k] = t
	}
	s.mu.Unlock()
	more := true
	err := s.eachRecord(func(key string, v version) {
		if !more || v.m == nil {
			return // eachRecord cannot stop: skip the rest
		}
		info := infoOf(v.m)
		if t, ok := touched[key]; ok && t.id == v.m.ID && t.at.After(info.LastUse) {
			info.LastUse = t.at
		}
		more = fn(info)
	})
	if err != nil {
		return fmt.Errorf("cache: list: %w", err)
	}
	return nil
}

// infoOf is the Info of a version as the index holds it.
func infoOf(m *Meta) Info {
	return Info{
		Key:      m.Key,
		Hashed:   len(m.Key) > maxIndexKey,
		Size:     m.Size,
		Stored:   m.Ranges.Covered(),
		Complete: m.Complete(),
		LastUse:  m.lastUse(),
		Ranges:   m.Ranges.Clone(),
	}
}

// Purge removes key's version from the cache: its index records (record,
// range set, block sums) and its body file, so that the next request
// fetches it afresh. It reports whether anything was stored under key.
//
// A version in use (a reader, a fill) is made obsolete, as a replaced
// one is: nothing is committed for it again, its holders finish from the
// open file, and the file goes at the last Release. So a purge never cuts
// a response under way.
func (s *Store) Purge(key string) (bool, error) {
	s.mu.Lock() // held across the delete, as evict does: no Get loads the record in between
	e := s.live[key]
	if e != nil {
		delete(s.live, key)
		e.markObsolete() // before the delete: a checkpoint after it commits nothing
	}
	delete(s.touched, key)
	id, exists, err := s.storedID(key)
	if err != nil || !exists {
		s.mu.Unlock()
		return e != nil, err
	}
	s.commitMu.Lock()
	freed, err := s.writeLocked([]indexOp{deleteOp(key, id)})
	s.commitMu.Unlock()
	s.mu.Unlock()
	for _, f := range freed {
		if e == nil || f != e.id { // a live version's file goes at its last Release
			s.removeBody(f)
		}
	}
	if err != nil {
		return true, fmt.Errorf("cache: purge %s: %w", logKey(key), err)
	}
	s.removed.purged.Add(1)
	return true, nil
}

// storedID returns the body file id of key's record in the index; 0 (and
// exists) for a record that does not decode, which deleteOp deletes all
// the same (its body file, named nowhere, goes at the next Open).
func (s *Store) storedID(key string) (id uint64, exists bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		v, ok, err := record(txn, key)
		if ok && v.m != nil {
			id = v.m.ID
		}
		exists = ok
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("cache: purge %s: %w", logKey(key), err)
	}
	return id, exists, nil
}

// PurgePrefix purges (Purge) every key that starts with prefix ("" is
// every key) and returns those it purged, in key order.
func (s *Store) PurgePrefix(prefix string) ([]string, error) {
	keys, err := s.keys()
	if err != nil {
		return nil, err
	}
	var purged []string
	for _, key := range keys {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		ok, err := s.Purge(key)
		if err != nil {
			return purged, err
		}
		if ok {
			purged = append(purged, key)
		}
	}
	return purged, nil
}

// Usage is how much the cache holds against its bound, and how many
// versions left it and why since Open: what the metrics and the status
// page show without scanning the index.
type Usage struct {
	// Used is what eviction counts against MaxSize: the bytes the index
	// claims plus the records.
	Used int64
	// MaxSize is the bound, resolved when automatic.
	MaxSize int64
	// MaxObjectSize is the largest version stored (Options.MaxObjectSize).
	MaxObjectSize int64
	// EvictedTTL counts partial versions evicted for going unused for
	// PartialTTL; EvictedSize the least recently used ones evicted to get
	// under MaxSize; Purged those removed by Purge.
	EvictedTTL, EvictedSize, Purged int64
}

// Usage returns the store's Usage now.
func (s *Store) Usage() Usage {
	s.commitMu.Lock()
	used := s.used
	s.commitMu.Unlock()
	return Usage{
		Used:          used,
		MaxSize:       s.opts.MaxSize,
		MaxObjectSize: s.opts.MaxObjectSize,
		EvictedTTL:    s.removed.ttl.Load(),
		EvictedSize:   s.removed.size.Load(),
		Purged:        s.removed.purged.Load(),
	}
}

// removals counts versions removed since Open, by reason (Usage).
type removals struct {
	ttl, size, purged atomic.Int64
}
