package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// An indexOp is one change to one index record, run inside a read-write
// transaction. It reports how it changes Store.used and which body file it
// frees (0 for none). It may run twice, in a fresh transaction, when the
// first one is full, so it reads what it needs from txn and has no other
// side effects.
type indexOp func(txn *badger.Txn) (delta int64, freed uint64, err error)

// writeLocked applies ops to the index in as few transactions as Badger
// accepts and keeps used in step with what committed: used is only right
// if every index write goes through here. On an error the ops before it
// stay committed. It returns the body files freed by committed ops, and asks
// for an eviction pass when the index claims more than MaxSize. The caller
// holds commitMu, which also keeps Badger from seeing conflicting
// transactions.
func (s *Store) writeLocked(ops []indexOp) ([]uint64, error) {
	b := indexBatch{s: s, txn: s.db.NewTransaction(true)}
	var err error
	for _, op := range ops {
		if err = b.do(op); err != nil {
			break
		}
	}
	freed, cerr := b.finish()
	s.kickLocked()
	return freed, errors.Join(err, cerr)
}

// indexBatch is writeLocked's transaction and the effects of its ops that
// count only once it commits.
type indexBatch struct {
	s     *Store
	txn   *badger.Txn
	delta int64    // change to used by the uncommitted ops
	freed []uint64 // body files freed by the uncommitted ops
	done  []uint64 // body files freed by committed ops
}

// do runs op; when the transaction is full (ErrTxnTooBig: Badger rejects
// the write before adding it) it commits and runs op again in a new one.
func (b *indexBatch) do(op indexOp) error {
	d, id, err := op(b.txn)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err := b.commit(); err != nil {
			return err
		}
		d, id, err = op(b.txn)
	}
	if err != nil {
		return err
	}
	b.delta += d
	if id != 0 {
		b.freed = append(b.freed, id)
	}
	return nil
}

// commit commits the pending ops, applies their effects if that worked,
// and starts a new transaction.
func (b *indexBatch) commit() error {
	err := b.txn.Commit()
	b.txn = b.s.db.NewTransaction(true)
	if err == nil {
		b.s.used += b.delta
		b.done = append(b.done, b.freed...)
	}
	b.delta, b.freed = 0, nil
	return err
}

// finish commits what is pending and returns the body files freed.
func (b *indexBatch) finish() ([]uint64, error) {
	err := b.commit()
	b.txn.Discard()
	return b.done, err
}

// Index layout of one version (see meta.go): its record under recordKey
// (everything but the range set; written when the version is created, its
// headers refreshed or its access time persisted) and its range set under
// rangesKey (written at every checkpoint).

// maxIndexKey is the longest key kept in clear in an index key. Badger
// refuses keys over 65,000 bytes, and every byte of a key sits in its
// tables (and their in-memory indexes); a longer key (a URL of 66 KB, say)
// goes under its hash, and its record holds it whole.
const maxIndexKey = 4 << 10

// recordKey is the index key of key's record: "e/" and the key, or "h/"
// and its SHA-256 when the key is longer than maxIndexKey.
func recordKey(key string) []byte {
	if len(key) <= maxIndexKey {
		return append([]byte("e/"), key...)
	}
	sum := sha256.Sum256([]byte(key))
	return append([]byte("h/"), sum[:]...)
}

// rangesKey is the index key of body file id's range set.
func rangesKey(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte("r/"), id) }

// version is one version as the index holds it.
type version struct {
	m *Meta // nil when the record does not decode (derr)
	// bytes is what the version's record takes in the index: its key and
	// value. It counts in used, beside the bytes of the body.
	bytes int64
	// legacy is set for a record that still holds its range set (written
	// before the range set had its own key); Open moves it (migrate).
	legacy bool
	derr   error
}

// footprint is what the version counts for in used and for eviction: the
// body bytes the index claims, and its record.
func (v version) footprint() int64 {
	if v.m == nil {
		return 0
	}
	return v.m.Ranges.Covered() + v.bytes
}

// record reads key's version in txn: its record, and its range set.
// exists is false when there is none (or the record under key's hash is
// another key's). v.m is nil when it exists but does not decode (v.derr
// says why): it counts for nothing in used, and may be overwritten or
// deleted.
func record(txn *badger.Txn, key string) (v version, exists bool, err error) {
	rk := recordKey(key)
	item, err := txn.Get(rk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	if err := item.Value(func(b []byte) error {
		v = decodeVersion(txn, rk, b)
		return nil
	}); err != nil {
		return v, false, err
	}
	if v.m != nil && v.m.Key != key {
		return version{}, false, nil // a hash collision: not key's
	}
	return v, true, nil
}

// decodeVersion decodes the record rk → b and reads its range set.
func decodeVersion(txn *badger.Txn, rk, b []byte) version {
	m, legacy, err := decodeRecord(b)
	v := version{bytes: int64(len(rk) + len(b)), legacy: legacy}
	if err == nil && !legacy {
		m.Epoch, m.Ranges, err = loadRanges(txn, m.ID)
		if err == nil {
			err = m.checkRanges()
		}
	}
	if err != nil {
		v.derr = err
		return v
	}
	v.m = &m
	return v
}

// loadRanges reads body file id's range set and the run that committed
// it; none stored reads as empty.
func loadRanges(txn *badger.Txn, id uint64) (uint64, rangeutil.Set, error) {
	item, err := txn.Get(rangesKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, rangeutil.Set{}, nil
	}
	if err != nil {
		return 0, rangeutil.Set{}, err
	}
	var (
		epoch uint64
		rs    rangeutil.Set
	)
	err = item.Value(func(b []byte) error {
		var derr error
		epoch, rs, derr = decodeRanges(b)
		return derr
	})
	return epoch, rs, err
}

// putRecordOp writes m's record under m.Key, not its range set. A record
// of another version under the key is replaced, its range set deleted (its
// body file is the caller's to remove). If the record is the same version
// and a flush of access times (touchOp) gave it a later Accessed than m's
// snapshot has, that one is kept: Accessed never goes back.
func putRecordOp(m Meta) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		old, _, err := record(txn, m.Key)
		if err != nil {
			return 0, 0, err
		}
		var delta int64
		if old.m != nil {
			delta -= old.bytes
			if old.m.ID != m.ID {
				delta -= old.m.Ranges.Covered()
				if err := txn.Delete(rangesKey(old.m.ID)); err != nil {
					return 0, 0, err
				}
			} else if old.m.Accessed.After(m.Accessed) {
				m.Accessed = old.m.Accessed
			}
		}
		rk := recordKey(m.Key)
		b, err := encodeRecord(&m)
		if err != nil {
			return 0, 0, err
		}
		return delta + int64(len(rk)+len(b)), 0, txn.Set(rk, b)
	}
}

// putRangesOp writes body file id's range set, committed by run epoch.
// This is all a checkpoint writes to the index, besides new block sums.
func putRangesOp(id, epoch uint64, rs rangeutil.Set) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		_, old, err := loadRanges(txn, id)
		if err != nil {
			return 0, 0, err
		}
		return rs.Covered() - old.Covered(), 0, txn.Set(rangesKey(id), encodeRanges(epoch, rs))
	}
}

// deleteOp deletes key's version if it is body file id's (or its record
// cannot be decoded), freeing id. A record of another version is left
// alone: the caller's view of key is out of date.
func deleteOp(key string, id uint64) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		v, exists, err := record(txn, key)
		if err != nil || !exists || (v.m != nil && v.m.ID != id) {
			return 0, 0, err
		}
		if err := txn.Delete(rangesKey(id)); err != nil {
			return 0, 0, err
		}
		return -v.footprint(), id, txn.Delete(recordKey(key))
	}
}

// touchOp sets Accessed of key's record to at, if the record is still
// version id and was not accessed later.
func touchOp(key string, id uint64, at time.Time) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		v, _, err := record(txn, key)
		if err != nil || v.m == nil || v.legacy || v.m.ID != id || !at.After(v.m.Accessed) {
			return 0, 0, err
		}
		v.m.Accessed = at
		rk := recordKey(key)
		b, err := encodeRecord(v.m)
		if err != nil {
			return 0, 0, err
		}
		return int64(len(rk)+len(b)) - v.bytes, 0, txn.Set(rk, b)
	}
}

// eachRecord calls fn for every version in the index, with its key (from
// the record for a hashed one; the index key if that does not decode).
// Records come in key order, those under a hash last.
func (s *Store) eachRecord(fn func(key string, v version)) error {
	return s.db.View(func(txn *badger.Txn) error {
		for _, prefix := range [][]byte{[]byte("e/"), []byte("h/")} {
			if err := eachUnder(txn, prefix, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachUnder is eachRecord for the records under one prefix.
func eachUnder(txn *badger.Txn, prefix []byte, fn func(key string, v version)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		rk := it.Item().KeyCopy(nil)
		err := it.Item().Value(func(b []byte) error {
			v := decodeVersion(txn, rk, b)
			key := string(rk[len(prefix):])
			if string(prefix) == "h/" {
				key = fmt.Sprintf("(hash %x)", rk[len(prefix):])
				if v.m != nil {
					key = v.m.Key
				}
			}
			fn(key, v)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
