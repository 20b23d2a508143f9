package cache

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dgraph-io/badger/v4"
)

// reconcile makes the index and the body files agree before anyone uses the
// store, and sums used. A crash or a hand can leave both kinds of strays: a
// record whose body file is gone is deleted, since it can never be served;
// a body file no record names (a version replaced or dropped while held
// when the process died) is removed, since nothing would ever remove it.
// Files under data/ that are not named like body files are left alone.
//
// Removing a body file because no record names it is only right if the
// scan saw every record. A scan that failed, or met a record that does not
// decode, may have missed some: then nothing is deleted and Open fails
// with ErrIndexDamaged.
func (s *Store) reconcile() error {
	files, err := s.bodyFiles()
	if err != nil {
		return err
	}
	var (
		used   int64
		dead   []indexOp
		live   = map[uint64]bool{}
		bad    []error
		legacy []Meta
	)
	err = recovered(func() error {
		return s.eachRecord(func(key string, v version) {
			switch m := v.m; {
			case m == nil:
				bad = append(bad, fmt.Errorf("record %s: %w", logKey(key), v.derr))
			case !files[m.ID]:
				s.log.Warn("cache: body file missing, dropping entry", "key", logKey(key), "id", m.ID)
				dead = append(dead, deleteOp(key, m.ID))
			default:
				delete(files, m.ID)
				live[m.ID] = true
				used += v.footprint()
				if v.legacy {
					legacy = append(legacy, *m)
				}
			}
		})
	})
	if err != nil {
		return indexDamaged(s.dir, fmt.Errorf("scan: %w", err))
	}
	if len(bad) > 0 {
		return indexDamaged(s.dir, fmt.Errorf("%d records do not decode; the first: %w", len(bad), bad[0]))
	}
	if err := s.dropStraySums(live); err != nil {
		return err
	}
	if err := s.dropStrays(dead, files, used); err != nil {
		return err
	}
	return s.migrate(legacy)
}

// dropStraySums deletes the block sums and range sets of versions no
// record names (a crash between storing a new version's sums and its
// record; a version replaced when its range set was written apart).
func (s *Store) dropStraySums(live map[uint64]bool) error {
	strays := map[uint64]bool{}
	var ranges [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("s/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) == 2+8+8 {
				if id := binary.BigEndian.Uint64(k[2:10]); !live[id] {
					strays[id] = true
				}
			}
		}
		rt := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("r/")})
		defer rt.Close()
		for rt.Rewind(); rt.Valid(); rt.Next() {
			if k := rt.Item().Key(); len(k) != 2+8 || !live[binary.BigEndian.Uint64(k[2:])] {
				ranges = append(ranges, rt.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: scan block sums: %w", err)
	}
	for id := range strays {
		if err := s.deleteSums(id); err != nil {
			return err
		}
	}
	return s.deleteKeys(ranges)
}

// deleteKeys deletes index keys that count for nothing in used.
func (s *Store) deleteKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("cache: delete stray keys: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("cache: delete stray keys: %w", err)
	}
	return nil
}

// migrate moves the range sets of records written before they had their
// own key (rangesKey) out of the records, so that checkpoints stop
// rewriting them. It runs once per such record, at Open.
func (s *Store) migrate(legacy []Meta) error {
	if len(legacy) == 0 {
		return nil
	}
	ops := make([]indexOp, 0, len(legacy))
	for _, m := range legacy {
		ops = append(ops, migrateOp(m.Key, m.ID))
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.writeLocked(ops); err != nil {
		return fmt.Errorf("cache: move range sets out of records: %w", err)
	}
	s.log.Info("cache: index records moved to the new layout", "records", len(legacy))
	return nil
}

// dropStrays deletes the dead records and the orphan files reconcile found,
// then sets used to the sum over the records that stay.
func (s *Store) dropStrays(dead []indexOp, orphans map[uint64]bool, used int64) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.writeLocked(dead); err != nil {
		return fmt.Errorf("cache: drop stray records: %w", err)
	}
	s.used = used // the deleted records were never counted
	for id := range orphans {
		s.removeBody(id)
	}
	if len(dead)+len(orphans) > 0 {
		s.log.Info("cache: startup scan", "records_dropped", len(dead), "orphan_files_removed", len(orphans))
	}
	return nil
}

// bodyFiles returns the IDs of the body files under data/.
func (s *Store) bodyFiles() (map[uint64]bool, error) {
	root := filepath.Join(s.dir, "data")
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("cache: scan %s: %w", root, err)
	}
	files := map[uint64]bool{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		names, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("cache: scan %s: %w", root, err)
		}
		for _, f := range names {
			if id, ok := parseBodyPath(d.Name(), f.Name()); ok && f.Type().IsRegular() {
				files[id] = true
			}
		}
	}
	return files, nil
}

// parseBodyPath returns the ID of the body file data/dir/name, or false
// if that is not where bodyPath puts one.
func parseBodyPath(dir, name string) (uint64, bool) {
	id, err := strconv.ParseUint(name, 16, 64)
	if err != nil || id == 0 || bodyName(id) != name || name[:2] != dir {
		return 0, false
	}
	return id, true
}

// migrateOp moves the range set of key's record, if it is still a record
// of version id that holds one, to its own key. used changes by what the
// record shrinks.
func migrateOp(key string, id uint64) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		old, exists, err := record(txn, key)
		if err != nil || !exists || old.m == nil || !old.legacy || old.m.ID != id {
			return 0, 0, err
		}
		if err := txn.Set(rangesKey(id), encodeRanges(old.m.Epoch, old.m.Ranges)); err != nil {
			return 0, 0, err
		}
		rk := recordKey(key)
		b, err := encodeRecord(old.m)
		if err != nil {
			return 0, 0, err
		}
		return int64(len(rk)+len(b)) - old.bytes, 0, txn.Set(rk, b)
	}
}
