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
