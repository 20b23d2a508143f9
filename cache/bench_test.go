package cache

import (
	"fmt"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// benchHeader is a typical stored response's headers, so that an index
// record has the size it has in use.
var benchHeader = map[string][]string{
	"Accept-Ranges":  {"bytes"},
	"Cache-Control":  {"public, max-age=86400"},
	"Content-Length": {"1073741824"},
	"Content-Type":   {"application/octet-stream"},
	"Date":           {"Thu, 26 Nov 2026 10:00:00 GMT"},
	"Etag":           {`"5f3a9c1e-40000000"`},
	"Last-Modified":  {"Mon, 02 Nov 2026 08:30:00 GMT"},
	"Server":         {"nginx"},
}

// benchSize is the body the benchmarks store: 1 GiB, make bench's size.
const benchSize = 1 << 30

// noSyncs are the Options of the benchmarks: checkpoints run as in the
// proxy (every DefaultCheckpointBytes, in the background), but the
// background syncs to disk never fall due, because their cost is the
// disk's, which other tenants of the machine share; and no maintenance
// goroutine (eviction, value-log GC) runs alongside. MaxSize is set so
// that Open does not measure the disk (and log it).
var noSyncs = Options{SyncBytes: 1 << 62, MaxSize: 1 << 40, manual: true}

// BenchmarkEntryWriteAt measures a fill writing a download in order in
// 1 MiB chunks (the fill's buffer): the write to the body file, its
// running block sums, the range set, and the background checkpoint every
// 4 MiB, but not the syncs (noSyncs). The body is 64 MiB: every 64 MiB,
// off the clock, the entry is dropped (its file removed) and a new one
// started, so that the dirty pages stay far below the kernel's writeback
// threshold and the shared disk stays out of the figure.
func BenchmarkEntryWriteAt(b *testing.B) {
	const chunk, size = 1 << 20, 64 << 20
	s := newStore(b, noSyncs)
	p := content(0, 0, chunk)
	var e *Entry
	off, n := int64(size), 0
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		if off == size {
			b.StopTimer()
			if e != nil {
				e.Drop()
				e.Release()
			}
			n++
			e = mustCreate(b, s, fmt.Sprintf("http://example.com/write%d.iso", n), Meta{Size: size, Header: benchHeader})
			off = 0
			b.StartTimer()
		}
		if _, err := e.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
		off += chunk
	}
	b.StopTimer()
	e.Release()
}

// BenchmarkEntryCheckpoint measures one checkpoint of an in-order download
// of 1 GiB: DefaultCheckpointBytes (4 blocks) more were written since the
// last, so it commits the range set and 4 block sums to Badger. Only the
// bookkeeping of those writes is done (the range set and the running sums,
// as WriteAt leaves them, inserted on the clock: under a microsecond); no
// byte is written, so the cost is the checkpoint's. It grows along the
// file, so the figure is the mean over a whole download: a new entry
// starts, off the clock, every 1 GiB.
func BenchmarkEntryCheckpoint(b *testing.B) {
	const every = DefaultCheckpointBytes
	s := newStore(b, noSyncs)
	var e *Entry
	off, n := int64(benchSize), 0
	b.ReportAllocs()
	for b.Loop() {
		if off == benchSize {
			b.StopTimer()
			if e != nil {
				e.Release()
			}
			n++
			e = mustCreate(b, s, fmt.Sprintf("http://example.com/ck%d.iso", n), Meta{Size: benchSize, Header: benchHeader})
			off = 0
			b.StartTimer()
		}
		written(e, off, off+every)
		if err := e.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		off += every
	}
	b.StopTimer()
	if m, err := s.load(e.key); err != nil || m == nil || m.Ranges.Covered() != off {
		b.Fatalf("load(%q) = %v, %v, want a record claiming %d bytes", e.key, m, err, off)
	}
	e.Release()
}

// written records [start, end) (whole blocks) as WriteAt does, without
// writing bytes: in the range set, and as running sums seen in order.
func written(e *Entry, start, end int64) {
	e.sums.mu.Lock()
	if e.sums.blocks == nil {
		e.sums.blocks = map[int64]runningSum{}
	}
	for b := start / BlockSize; b < end/BlockSize; b++ {
		e.sums.blocks[b] = runningSum{crc: uint32(b), n: BlockSize}
	}
	e.sums.mu.Unlock()
	e.mu.Lock()
	e.meta.Ranges.Insert(rangeutil.Range{Start: start, End: end})
	e.sinceCheckpoint += end - start
	e.mu.Unlock()
}

// BenchmarkStoreGet measures the index read of every request for a stored
// key, with the Release that ends it. Live: another request holds the
// entry, so Get finds it in memory. Cold: nobody does, so Get loads the
// record from Badger, decodes it and opens the body file, and Release
// closes it again; with a record of 1 or 1000 ranges (the set's decoding
// grows with them).
func BenchmarkStoreGet(b *testing.B) {
	s := newStore(b, noSyncs)
	for _, n := range []int{1, 1000} {
		name := map[int]string{1: "1range", 1000: "1000ranges"}[n]
		key := fmt.Sprintf("http://example.com/get%d.iso", n)
		e := mustCreate(b, s, key, Meta{Size: benchSize, Header: benchHeader})
		stride := int64(benchSize / n)
		for i := range int64(n) {
			writeRange(b, e, 0, rangeutil.Range{Start: i * stride, End: i*stride + 512})
		}
		e.Release() // checkpoints: the record claims the n ranges
		if m, err := s.load(key); err != nil || m == nil || m.Ranges.Len() != n {
			b.Fatalf("load(%q) = %v, %v, want a record of %d ranges", key, m, err, n)
		}
		b.Run("cold/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				getRelease(b, s, key)
			}
		})
		if n > 1 {
			continue
		}
		b.Run("live", func(b *testing.B) {
			held := mustGet(b, s, key)
			defer held.Release()
			b.ReportAllocs()
			for b.Loop() {
				getRelease(b, s, key)
			}
		})
	}
}

// getRelease is a request's Get and Release of key, which is stored. Not
// mustGet: its t.Helper call would cost more than a live Get.
func getRelease(b *testing.B, s *Store, key string) {
	e, err := s.Get(key)
	if err != nil || e == nil {
		b.Fatalf("Get(%q) = %v, %v, want an entry", key, e, err)
	}
	e.Release()
}

// BenchmarkEntryReadable measures the check a reader makes before every
// read from the body file (entryBody), on a block this process verified
// already: a warm hit.
func BenchmarkEntryReadable(b *testing.B) {
	const size = 4 * BlockSize
	s := newStore(b, noSyncs)
	e := mustCreate(b, s, "http://example.com/avail.iso", Meta{Size: size, Header: benchHeader})
	defer e.Release()
	writeRange(b, e, 0, rangeutil.Range{Start: 0, End: size})
	if err := e.Checkpoint(); err != nil { // sums the blocks: verified
		b.Fatal(err)
	}
	off := int64(BlockSize + 4096)
	if got, want := readable(e, off), int64(BlockSize-4096); got != want {
		b.Fatalf("readable(%d) = %d, want %d", off, got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		readable(e, off)
	}
}

// BenchmarkRunningSumsAdd measures the CRC32C that WriteAt folds in as
// bytes are written: a fill's 1 MiB buffer, and a 32 KiB short read. The
// offsets wrap every 64 MiB, as a checkpoint (take) would forget the
// complete blocks, so the map stays small.
func BenchmarkRunningSumsAdd(b *testing.B) {
	for _, chunk := range []int{1 << 20, 32 << 10} {
		b.Run(fmt.Sprintf("%dKiB", chunk>>10), func(b *testing.B) {
			var r runningSums
			p := content(0, 0, chunk)
			var off int64
			b.SetBytes(int64(chunk))
			b.ReportAllocs()
			for b.Loop() {
				r.add(p, off)
				off = (off + int64(chunk)) % (64 << 20)
			}
		})
	}
}
