package cache

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Index keys outside the records ("e/..."): the number of the current run,
// and a marker that the last run closed cleanly.
var (
	epochKey = []byte("m/epoch")
	cleanKey = []byte("m/clean")
)

// startEpoch numbers this run and tells whether the previous one (prev)
// ended with Close. Every commit records the run that made it
// (Meta.Epoch), so after a crash the startup check knows which entries
// were being written.
func (s *Store) startEpoch() (prev uint64, clean bool, err error) {
	err = s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(epochKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := item.Value(func(v []byte) error {
				if len(v) == 8 {
					prev = binary.BigEndian.Uint64(v)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if _, err := txn.Get(cleanKey); err == nil {
			clean = true
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		s.epoch = prev + 1
		if err := txn.Set(epochKey, binary.BigEndian.AppendUint64(nil, s.epoch)); err != nil {
			return err
		}
		return txn.Delete(cleanKey)
	})
	if err != nil {
		return 0, false, fmt.Errorf("cache: start run: %w", err)
	}
	return prev, clean, nil
}

// markClean records that this run ends with everything checkpointed.
func (s *Store) markClean() error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(cleanKey, nil) }); err != nil {
		return fmt.Errorf("cache: mark clean shutdown: %w", err)
	}
	return nil
}

// checkAfterCrash verifies, in the background, every block of the entries
// committed by run prev, which did not end with Close: those are the blocks
// a crash may have left wrong. Bad ones are dropped (and fetched again when
// asked for). Blocks are also checked when first served, so this only finds
// damage sooner. It stops when the store closes.
func (s *Store) checkAfterCrash(prev uint64) {
	defer s.background.Done()
	var keys []string
	err := s.eachRecord(func(key string, m *Meta, derr error) {
		if derr == nil && m.Epoch == prev {
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
			s.log.Error("cache: startup check", "key", key, "err", err)
		}
	}
	s.log.Info("cache: checked what was being written before an unclean shutdown",
		"entries", rep.Entries, "blocks", rep.Blocks, "bad_blocks_dropped", rep.Bad)
}
