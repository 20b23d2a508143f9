package rangeutil

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSetInsert measures the two shapes the cache produces: blocks
// arriving in order (a download), and blocks arriving anywhere (concurrent
// range requests).
func BenchmarkSetInsert(b *testing.B) {
	const n = 10_000
	b.Run("append10k", func(b *testing.B) {
		for b.Loop() {
			var s Set
			for i := range int64(n) {
				s.Insert(Range{Start: 20 * i, End: 20*i + 10}) // gaps keep n intervals
			}
		}
	})
	b.Run("random10k", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		rs := make([]Range, n)
		for i := range rs {
			start := rng.Int64N(1 << 30)
			rs[i] = Range{Start: start, End: start + 1 + rng.Int64N(1<<16)}
		}
		for b.Loop() {
			var s Set
			for _, r := range rs {
				s.Insert(r)
			}
		}
	})
}

func BenchmarkParseRange(b *testing.B) {
	for _, h := range []string{"bytes=1048576-", "bytes=0-499, 1000-1499, -500"} {
		b.Run(h, func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseRange(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The benchmarks below run each Set operation the cache and the proxy call
// per write or per read on three shapes of a body's set (see shaped).
var setShapes = []struct {
	name string
	n    int
}{
	{"1range", 1},        // a download in progress, or done
	{"2ranges", 2},       // a download stopped part way, a later range cached
	{"1000ranges", 1000}, // what many scattered range requests leave
}

// fileSize is the body the shapes describe: 2 GiB, so that offsets have
// the digits a real index record has.
const fileSize = 2 << 30

// shaped returns n intervals spread over [0, n*stride): interval i is
// [i*stride, i*stride + stride/2).
func shaped(n int, stride int64) Set {
	var s Set
	for i := range int64(n) {
		s.Insert(Range{Start: i * stride, End: i*stride + stride/2})
	}
	return s
}

// probe returns an offset a quarter into the middle interval of
// shaped(n, stride): where a reader or a block check lands.
func probe(n int, stride int64) int64 { return int64(n/2)*stride + stride/4 }

// BenchmarkSetInsertAdjacent measures what Entry.WriteAt does with every
// write: Insert the 1 MiB just written right after the interval it extends
// (the middle one, so a fragmented set has intervals on both sides). The
// intervals are 2^50 bytes apart so the growing one never reaches the next:
// Insert's cost depends on the count of intervals, not on the offsets.
func BenchmarkSetInsertAdjacent(b *testing.B) {
	const stride, chunk = 1 << 50, 1 << 20
	for _, sh := range setShapes {
		b.Run(sh.name, func(b *testing.B) {
			s := shaped(sh.n, stride)
			end := int64(sh.n/2)*stride + stride/2
			b.ReportAllocs()
			for b.Loop() {
				s.Insert(Range{Start: end, End: end + chunk})
				end += chunk
			}
			if s.Len() != sh.n {
				b.Fatalf("Insert adjacent: %d intervals, want %d", s.Len(), sh.n)
			}
		})
	}
}

// BenchmarkSetContiguousEnd measures the lookup behind Entry.Available,
// which a reader calls before every read from the body file.
func BenchmarkSetContiguousEnd(b *testing.B) {
	for _, sh := range setShapes {
		b.Run(sh.name, func(b *testing.B) {
			stride := int64(fileSize / sh.n)
			s, off := shaped(sh.n, stride), probe(sh.n, stride)
			if s.ContiguousEnd(off) == off {
				b.Fatalf("ContiguousEnd(%d) = %d: probe not present", off, off)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.ContiguousEnd(off)
			}
		})
	}
}

// BenchmarkSetContains measures the check that a block is present
// (verifyBlock, on the first read of each stored block) and that a body is
// complete (Meta.Complete, per request).
func BenchmarkSetContains(b *testing.B) {
	for _, sh := range setShapes {
		b.Run(sh.name, func(b *testing.B) {
			stride := int64(fileSize / sh.n)
			s, off := shaped(sh.n, stride), probe(sh.n, stride)
			block := Range{Start: off, End: off + stride/8}
			if !s.Contains(block) {
				b.Fatalf("Contains(%v) = false, want true", block)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Contains(block)
			}
		})
	}
}

// BenchmarkSetCovered measures Covered, which Entry.WriteAt calls twice per
// write (written minus claimed bytes) and every index write calls on the
// record it replaces: it walks every interval.
func BenchmarkSetCovered(b *testing.B) {
	for _, sh := range setShapes {
		b.Run(sh.name, func(b *testing.B) {
			s := shaped(sh.n, fileSize/int64(sh.n))
			b.ReportAllocs()
			for b.Loop() {
				s.Covered()
			}
		})
	}
}

// BenchmarkSetMissing measures the gaps of a whole body, as a request
// finds them: FirstMissing on every request for a stored key (serveOnce),
// Missing on every refill (to tell a MISS from a PARTIAL).
func BenchmarkSetMissing(b *testing.B) {
	whole := Range{Start: 0, End: fileSize}
	for _, sh := range setShapes {
		s := shaped(sh.n, fileSize/int64(sh.n))
		b.Run("First/"+sh.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.FirstMissing(whole)
			}
		})
		b.Run("All/"+sh.name, func(b *testing.B) {
			if got := len(s.Missing(whole)); got != sh.n {
				b.Fatalf("Missing(%v) has %d gaps, want %d", whole, got, sh.n)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Missing(whole)
			}
		})
	}
}

// BenchmarkSetClone measures Clone, which Entry.Meta (several calls per
// request) and every checkpoint make of the range set.
func BenchmarkSetClone(b *testing.B) {
	for _, sh := range setShapes {
		b.Run(sh.name, func(b *testing.B) {
			s := shaped(sh.n, fileSize/int64(sh.n))
			b.ReportAllocs()
			for b.Loop() {
				s.Clone()
			}
		})
	}
}

// BenchmarkSetJSON measures the set's part of an index record: every
// commit encodes it (MarshalJSON, through Meta), and every commit and cold
// Store.Get decodes the record it reads (UnmarshalJSON). Bytes are those of
// the encoding. MarshalBinary is not benchmarked: no index path uses it.
func BenchmarkSetJSON(b *testing.B) {
	for _, sh := range setShapes {
		s := shaped(sh.n, fileSize/int64(sh.n))
		enc, err := s.MarshalJSON()
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Marshal/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.MarshalJSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Unmarshal/"+sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				var d Set
				if err := d.UnmarshalJSON(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
