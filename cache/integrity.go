package cache

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// BlockSize is the unit of integrity checks: every complete block of a body
// has a CRC32C (Castagnoli) in its Meta. A block whose bytes no longer match
// is never served; it is dropped from the range set and fetched again.
const BlockSize = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Block arithmetic never overflows, whatever size an origin declares (up
// to math.MaxInt64): no expression goes past the size it is given.

// blockRange returns the bytes of block b of a body of size bytes; b is
// below numBlocks(size).
func blockRange(b, size int64) rangeutil.Range {
	start := b * BlockSize
	return rangeutil.Range{Start: start, End: start + min(BlockSize, size-start)}
}

// numBlocks returns how many blocks a body of size bytes has: the blocks
// that start below size.
func numBlocks(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size-1)/BlockSize + 1
}

// completeBlocks lists the blocks wholly present in rs.
func completeBlocks(rs rangeutil.Set, size int64) []int64 {
	var out []int64
	for _, r := range rs.Ranges() {
		for b := numBlocks(r.Start); b < numBlocks(size); b++ { // the first block starting at or after r.Start
			br := blockRange(b, size)
			if br.End > r.End {
				break
			}
			out = append(out, b)
		}
	}
	return out
}

// blockSum computes the CRC32C of block b as it is in the body file.
func (e *Entry) blockSum(b, size int64) (uint32, error) {
	br := blockRange(b, size)
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(e.file, br.Start, br.Len())); err != nil {
		return 0, fmt.Errorf("cache: read block %d of %s: %w", b, logKey(e.key), err)
	}
	return h.Sum32(), nil
}

// blockSum is the CRC32C of one block, for the index.
type blockSum struct {
	block int64
	sum   uint32
}

// sumNewBlocks computes the sums of the blocks complete in snap but not in
// the durable set: from the bytes as they were written when WriteAt saw
// the whole block in order (runningSums), else by reading the block back.
// It looks only at the blocks the new bytes touch, so a checkpoint costs
// the same at any point of a long download. Those blocks count as verified
// for this process, and it returns the sums for the commit to store.
func (e *Entry) sumNewBlocks(snap *Meta) ([]blockSum, error) {
	if snap.Size < 0 {
		return nil, nil
	}
	durable := e.durableRanges()
	var fresh []blockSum
	for _, r := range snap.Ranges.Ranges() {
		for _, nr := range durable.Missing(r) {
			for b := nr.Start / BlockSize; b <= (nr.End-1)/BlockSize; b++ {
				br := blockRange(b, snap.Size)
				if !snap.Ranges.Contains(br) || durable.Contains(br) {
					continue
				}
				if n := len(fresh); n > 0 && fresh[n-1].block == b {
					continue // two new ranges in one block
				}
				sum, ok := e.sums.take(b, br.Len())
				if !ok {
					var err error
					if sum, err = e.blockSum(b, snap.Size); err != nil {
						return nil, err
					}
				}
				fresh = append(fresh, blockSum{b, sum})
			}
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	blocks := make([]int64, len(fresh))
	for i, bs := range fresh {
		blocks[i] = bs.block
	}
	e.store.verified.mark(e.id, blocks...)
	for _, b := range blocks {
		e.markChecked(b)
	}
	return fresh, nil
}

// ErrCorrupt is reported for a block whose bytes do not match its checksum.
var ErrCorrupt = errors.New("cache: block does not match its checksum")

// verifyBlock checks block b once per process: a complete, durable block
// with a recorded sum is read back and compared. A bad block is dropped
// from the entry (ErrCorrupt). Blocks without a sum yet were written by
// this process and pass.
func (e *Entry) verifyBlock(b int64) error {
	m := e.Meta()
	br := blockRange(b, m.Size)
	if m.Size < 0 || !e.durableRanges().Contains(br) || e.store.verified.has(e.id, b) {
		e.markChecked(b)
		return nil
	}
	want, ok, err := e.store.loadSum(e.id, b) // one key: a hit need not load them all
	if err != nil || !ok {
		e.markChecked(b) // stored before it had a sum: nothing to compare with
		return err
	}
	sum, err := e.blockSum(b, m.Size)
	if err != nil {
		return err
	}
	if sum != want {
		e.store.log.Warn("cache: corrupt block dropped; it will be fetched again", "key", logKey(e.key), "block", b)
		return errors.Join(ErrCorrupt, e.dropBlock(b))
	}
	e.store.verified.mark(e.id, b)
	e.markChecked(b)
	return nil
}

// markChecked records in the entry that block b may be served.
func (e *Entry) markChecked(b int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checked.Insert(rangeutil.Range{Start: b, End: b + 1})
}

// dropBlock removes block b from the entry and commits that at once, so the
// index stops claiming it.
func (e *Entry) dropBlock(b int64) error {
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.mu.Lock()
	br := blockRange(b, e.meta.Size)
	e.meta.Ranges.Remove(br)
	e.durable.Remove(br)
	durable := e.durable.Clone()
	e.signalLocked()
	e.mu.Unlock()
	return e.store.commitRanges(e, durable, nil)
}

// verifiedBlocks remembers, per body file, the blocks checked in this
// process, so a block is read back once however often it is served.
type verifiedBlocks struct {
	mu sync.Mutex
	m  map[uint64]map[int64]bool
}

func (v *verifiedBlocks) mark(id uint64, blocks ...int64) {
	if len(blocks) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[uint64]map[int64]bool{}
	}
	if v.m[id] == nil {
		v.m[id] = map[int64]bool{}
	}
	for _, b := range blocks {
		v.m[id][b] = true
	}
}

func (v *verifiedBlocks) has(id uint64, b int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[id][b]
}

// forget drops what is known of a body file that is gone.
func (v *verifiedBlocks) forget(id uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, id)
}

// VerifyReport is what Store.Verify found.
type VerifyReport struct {
	Entries int // entries scanned
	Blocks  int // complete blocks checked against their sums
	Bad     int // blocks that did not match and were dropped
}

// Verify checks every complete block of every entry against its sum and
// drops the blocks that do not match (the next request fetches them
// again). bad is called for each one.
func (s *Store) Verify(bad func(key string, block int64)) (VerifyReport, error) {
	var rep VerifyReport
	keys, err := s.keys()
	if err != nil {
		return rep, err
	}
	for _, key := range keys {
		e, err := s.get(key, false) // checking every entry is no use of it: keep their LRU order
		if err != nil {
			s.log.Error("cache: verify: cannot read entry", "key", logKey(key), "err", err)
			continue
		}
		if e == nil {
			continue // vanished
		}
		checked, dropped, err := e.verifyAll()
		e.Release()
		rep.Entries++
		rep.Blocks += checked
		rep.Bad += len(dropped)
		for _, b := range dropped {
			bad(key, b)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// verifyAll checks every summed block, whatever this process checked
// before, and returns how many it checked and which it dropped.
func (e *Entry) verifyAll() (int, []int64, error) {
	m := e.Meta()
	if m.Size < 0 {
		return 0, nil, nil
	}
	sums, err := e.store.loadSums(e.id, m.Size)
	if err != nil {
		return 0, nil, err
	}
	var dropped []int64
	checked := 0
	for _, b := range completeBlocks(e.durableRanges(), m.Size) {
		want, ok := sums[b]
		if !ok {
			continue // stored before it had a sum: nothing to compare with
		}
		checked++
		sum, err := e.blockSum(b, m.Size)
		if err != nil {
			return checked, dropped, err
		}
		if sum != want {
			dropped = append(dropped, b)
			if err := e.dropBlock(b); err != nil {
				return checked, dropped, err
			}
			continue
		}
		e.store.verified.mark(e.id, b)
		e.markChecked(b)
	}
	return checked, dropped, nil
}
