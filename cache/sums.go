package cache

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Block sums live under their own keys, written once, when a block becomes
// complete: a record that carried them all would be rewritten whole at every
// checkpoint, which for a file of n blocks means n²/interval bytes written to
// the index over its download.

// sumPrefix is the key prefix of body file id's sums.
func sumPrefix(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte("s/"), id) }

// sumKey names the CRC32C of block b of body file id.
func sumKey(id uint64, b int64) []byte {
	return binary.BigEndian.AppendUint64(sumPrefix(id), uint64(b))
}

// putSumOp stores one block's sum; it does not change the bytes the index
// claims.
func putSumOp(id uint64, b int64, sum uint32) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		return 0, 0, txn.Set(sumKey(id, b), binary.BigEndian.AppendUint32(nil, sum))
	}
}

// loadSum reads block b's sum of body file id; ok is false when none is
// stored.
func (s *Store) loadSum(id uint64, b int64) (sum uint32, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(sumKey(id, b))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 4 {
				sum, ok = binary.BigEndian.Uint32(v), true
			}
			return nil
		})
	})
	if err != nil {
		return 0, false, fmt.Errorf("cache: load sum %d of %016x: %w", b, id, err)
	}
	return sum, ok, nil
}

// loadSums reads body file id's sums, by block: only the blocks that have
// one, so it costs what was stored, whatever the size. Blocks beyond a
// body of size bytes are not of this version and are left out.
func (s *Store) loadSums(id uint64, size int64) (map[int64]uint32, error) {
	if size < 0 {
		return nil, nil
	}
	sums := map[int64]uint32{}
	prefix := sumPrefix(id)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			b := int64(binary.BigEndian.Uint64(key[len(prefix):]))
			if b < 0 || b >= numBlocks(size) {
				continue // not of this size: ignore
			}
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 4 {
					sums[b] = binary.BigEndian.Uint32(v)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: load sums of %016x: %w", id, err)
	}
	return sums, nil
}

// deleteSums removes body file id's sums once its file is gone. It takes no
// store lock (callers may hold commitMu): nothing writes sums of a body
// that no record names.
func (s *Store) deleteSums(id uint64) error {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: sumPrefix(id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("cache: delete sums of %016x: %w", id, err)
		}
	}
	return wb.Flush()
}
