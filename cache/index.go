package cache

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
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

// record reads key's record in txn. exists is false when there is none; m
// is nil when it exists but cannot be decoded (it counts for nothing in
// used, and may be overwritten or deleted).
func record(txn *badger.Txn, key string) (m *Meta, exists bool, err error) {
	item, err := txn.Get(indexKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	err = item.Value(func(v []byte) error {
		if d, derr := decodeMeta(v); derr == nil {
			m = &d
		}
		return nil
	})
	return m, true, err
}

// putOp writes m as the record of m.Key. If the record is the same version
// and a flush of access times (touchOp) gave it a later Accessed than m's
// snapshot has, that one is kept: Accessed never goes back.
func putOp(m Meta) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		old, _, err := record(txn, m.Key)
		if err != nil {
			return 0, 0, err
		}
		delta := m.Ranges.Covered()
		if old != nil {
			delta -= old.Ranges.Covered()
			if old.ID == m.ID && old.Accessed.After(m.Accessed) {
				m.Accessed = old.Accessed
			}
		}
		b, err := encodeMeta(&m)
		if err != nil {
			return 0, 0, err
		}
		return delta, 0, txn.Set(indexKey(m.Key), b)
	}
}

// deleteOp deletes key's record if it names body file id (or cannot be
// decoded), freeing id. A record of another version is left alone: the
// caller's view of key is out of date.
func deleteOp(key string, id uint64) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		m, exists, err := record(txn, key)
		if err != nil || !exists || (m != nil && m.ID != id) {
			return 0, 0, err
		}
		var delta int64
		if m != nil {
			delta = -m.Ranges.Covered()
		}
		return delta, id, txn.Delete(indexKey(key))
	}
}

// touchOp sets Accessed of key's record to at, if the record is still
// version id and was not accessed later.
func touchOp(key string, id uint64, at time.Time) indexOp {
	return func(txn *badger.Txn) (int64, uint64, error) {
		m, _, err := record(txn, key)
		if err != nil || m == nil || m.ID != id || !at.After(m.Accessed) {
			return 0, 0, err
		}
		m.Accessed = at
		b, err := encodeMeta(m)
		if err != nil {
			return 0, 0, err
		}
		return 0, 0, txn.Set(indexKey(key), b)
	}
}

// eachRecord calls fn for every index record, in key order, with its key
// and its decoded metadata or the decoding error.
func (s *Store) eachRecord(fn func(key string, m *Meta, derr error)) error {
	return s.db.View(func(txn *badger.Txn) error {
		prefix := indexKey("")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := string(it.Item().Key()[len(prefix):])
			err := it.Item().Value(func(v []byte) error {
				m, derr := decodeMeta(v)
				fn(key, &m, derr)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
