package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// Index keys outside the records ("e/..."): the number of the current run,
// a marker that the last run closed cleanly, the kernel boot the last run
// started in, and the runs whose writes may not be on disk yet.
var (
	epochKey = []byte("m/epoch")
	cleanKey = []byte("m/clean")
	bootKey  = []byte("m/boot")
	dirtyKey = []byte("m/dirty")
)

// runStart is what startEpoch learns of the runs before this one.
type runStart struct {
	prev  uint64   // the previous run's number (0: none)
	clean bool     // it ended with Close, which syncs everything
	dirty []uint64 // runs whose claimed bytes may not all be on disk
	// powerLost is set when the previous run did not end with Close and
	// the kernel has restarted since (or the boot is unknown): bytes it
	// claimed may have been in memory only, and are gone.
	powerLost bool
}

// startEpoch numbers this run and records the kernel boot it runs in. Every
// commit records the run that made it (Meta.Epoch), so after a crash the
// store knows which entries were being written.
//
// A run's bytes reach the disk when Close syncs them; until then it is
// dirty. A crash of the process alone loses nothing the kernel holds, so
// its run stays dirty until this run syncs (checkAfterCrash); a restart of
// the machine after an unclean end is a power loss (runStart.powerLost).
func (s *Store) startEpoch() (runStart, error) {
	var st runStart
	err := s.db.Update(func(txn *badger.Txn) error {
		if v, err := getValue(txn, epochKey); err != nil {
			return err
		} else if len(v) == 8 {
			st.prev = binary.BigEndian.Uint64(v)
		}
		clean, err := getValue(txn, cleanKey)
		if err != nil {
			return err
		}
		st.clean = clean != nil
		prevBoot, err := getValue(txn, bootKey)
		if err != nil {
			return err
		}
		dirty, err := getValue(txn, dirtyKey)
		if err != nil {
			return err
		}
		if !st.clean && st.prev > 0 {
			st.dirty = append(decodeEpochs(dirty), st.prev)
			st.powerLost = s.bootID == "" || string(prevBoot) != s.bootID
		}
		s.epoch = st.prev + 1
		for _, kv := range [][2][]byte{
			{epochKey, binary.BigEndian.AppendUint64(nil, s.epoch)},
			{bootKey, []byte(s.bootID)},
			{dirtyKey, encodeEpochs(st.dirty)},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return txn.Delete(cleanKey)
	})
	if err != nil {
		return st, fmt.Errorf("cache: start run: %w", err)
	}
	return st, nil
}

// getValue returns the value of key, nil when there is none.
func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if v == nil {
		v = []byte{} // present, even if empty
	}
	return v, err
}

func encodeEpochs(es []uint64) []byte {
	out := []byte{}
	for _, e := range es {
		out = binary.BigEndian.AppendUint64(out, e)
	}
	return out
}

func decodeEpochs(v []byte) []uint64 {
	var es []uint64
	for ; len(v) >= 8; v = v[8:] {
		es = append(es, binary.BigEndian.Uint64(v))
	}
	return es
}

// markClean records that this run ends with everything checkpointed and
// synced, so no run is dirty any more.
func (s *Store) markClean() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(dirtyKey, []byte{}); err != nil {
			return err
		}
		return txn.Set(cleanKey, nil)
	})
	if err != nil {
		return fmt.Errorf("cache: mark clean shutdown: %w", err)
	}
	return nil
}

// markSynced records that the runs before this one are on disk.
func (s *Store) markSynced() error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(dirtyKey, []byte{}) }); err != nil {
		return fmt.Errorf("cache: record sync: %w", err)
	}
	return s.db.Sync()
}

// cutUnsynced runs after a power loss, before anything is served: every
// entry the dirty runs committed keeps only its whole blocks that have a
// sum, since bytes they claimed may never have reached the disk. Those
// blocks are then checked against their sums, when first served or by
// checkAfterCrash, and refetched if they do not match. A block the crashed
// run was still writing has no sum and is fetched again; that is all a
// power loss costs beyond what had not been synced.
func (s *Store) cutUnsynced(dirty []uint64) error {
	var ops []indexOp
	var cut int64
	err := s.eachRecord(func(key string, v version) {
		m := v.m
		if m == nil || !slices.Contains(dirty, m.Epoch) {
			return
		}
		keep := rangeutil.Set{}
		if m.Size >= 0 {
			sums, err := s.loadSums(m.ID, m.Size)
			if err != nil {
				s.log.Error("cache: after power loss", "key", logKey(key), "err", err)
			}
			for _, b := range completeBlocks(m.Ranges, m.Size) {
				if _, ok := sums[b]; ok {
					keep.Insert(blockRange(b, m.Size))
				}
			}
		}
		if keep.Equal(m.Ranges) {
			return
		}
		cut += m.Ranges.Covered() - keep.Covered()
		ops = append(ops, putRangesOp(m.ID, m.Epoch, keep))
	})
	if err != nil {
		return fmt.Errorf("cache: scan index after power loss: %w", err)
	}
	s.commitMu.Lock()
	_, err = s.writeLocked(ops)
	s.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("cache: cut claims after power loss: %w", err)
	}
	s.log.Warn("cache: the machine restarted while downloads were being written; kept only whole checksummed blocks",
		"entries_cut", len(ops), "bytes_dropped", cut)
	return nil
}

// checkAfterCrash runs in the background after a run ended without Close.
// After a crash of the process alone it syncs the cache's filesystem, so
// the crashed run's bytes, still in the kernel's cache, are on disk before
// the run stops being dirty. After a power loss (cutUnsynced ran) it
// verifies every block of the entries the dirty runs committed: those are
// the blocks that may have been lost. Blocks are also checked when first
// served, so this only finds damage sooner. It stops when the store
// closes.
func (s *Store) checkAfterCrash(st runStart) {
	defer s.background.Done()
	if !st.powerLost {
		if err := syncFS(s.dataDir()); err != nil {
			s.log.Error("cache: sync after a crash", "err", err)
			return
		}
		if err := s.markSynced(); err != nil {
			s.log.Error("cache: sync after a crash", "err", err)
		}
		return
	}
	var keys []string
	err := s.eachRecord(func(key string, v version) {
		if v.m != nil && slices.Contains(st.dirty, v.m.Epoch) {
			keys = append(keys, key)
		}
	})
	if err != nil {
		s.log.Error("cache: startup check", "err", err)
		return
	}
	var rep VerifyReport
	for _, key := range keys {
		select {
		case <-s.quit:
			return
		default:
		}
		e, err := s.get(key, false)
		if err != nil || e == nil {
			continue
		}
		checked, dropped, err := e.verifyAll()
		e.Release()
		rep.Entries++
		rep.Blocks += checked
		rep.Bad += len(dropped)
		if err != nil {
			s.log.Error("cache: startup check", "key", logKey(key), "err", err)
		}
	}
	s.log.Info("cache: checked what was being written before the machine restarted",
		"entries", rep.Entries, "blocks", rep.Blocks, "bad_blocks_dropped", rep.Bad)
}
