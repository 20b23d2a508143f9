package cache

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// itemVersion returns the commit version of index key k, 0 if absent.
func itemVersion(t *testing.T, s *Store, k []byte) uint64 {
	t.Helper()
	var v uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err == nil {
			v = item.Version()
		}
		return err
	})
	if err != nil {
		t.Fatalf("read index key %q: %v", k, err)
	}
	return v
}

// TestCheckpointLeavesHeaders: every checkpoint rewrote the whole record,
// headers included: a 9 MB header took the index to 515 MB for one 200 MB
// body. Now a checkpoint writes the range set under its own key, and the
// record (with the headers) is written when the version is created or its
// headers change.
func TestCheckpointLeavesHeaders(t *testing.T) {
	s := newStore(t, Options{CheckpointBytes: 1 << 20})
	big := strings.Repeat("h", 60<<10) // under MaxHeaderBytes
	const key = "http://example.test/big-headers"
	e := mustCreate(t, s, key, Meta{Size: 8 << 20, Header: map[string][]string{"X-Big": {big}}})
	defer e.Release()
	record := append([]byte("e/"), key...)
	before := itemVersion(t, s, record)
	if before == 0 {
		t.Fatalf("no record under %q after Create", record[:20])
	}
	for off := int64(0); off < 8<<20; off += 1 << 20 {
		writeRange(t, e, 2, rangeutil.Range{Start: off, End: off + 1<<20})
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	if after := itemVersion(t, s, record); after != before {
		t.Errorf("the record (60 KiB of headers) was rewritten by checkpoints: version %d, then %d", before, after)
	}
	m, err := s.load(key)
	if err != nil || m == nil || !m.Complete() {
		t.Fatalf("load(%s) = %+v, %v, want a complete version", key, m, err)
	}
	if err := e.Update(func(m *Meta) { m.Header["X-New"] = []string{"1"} }); err != nil {
		t.Fatal(err)
	}
	if after := itemVersion(t, s, record); after == before {
		t.Errorf("Update left the record at version %d, want it rewritten", after)
	}
}

// TestHeadersOverLimit: a version whose headers exceed MaxHeaderBytes is
// not stored, and an update that would take them there is refused.
func TestHeadersOverLimit(t *testing.T) {
	s := newStore(t, Options{})
	big := map[string][]string{"X-Big": {strings.Repeat("h", MaxHeaderBytes)}}
	if e, err := s.Create("k", Meta{Size: 10, Header: big}); e != nil || !errors.Is(err, ErrTooLarge) {
		t.Errorf("Create(headers of %d bytes) = %v, %v, want nil, ErrTooLarge", headerBytes(big), e, err)
	}
	if e, err := s.Create("k", Meta{Size: 10, RequestHeader: big}); e != nil || !errors.Is(err, ErrTooLarge) {
		t.Errorf("Create(request headers of %d bytes) = %v, %v, want nil, ErrTooLarge", headerBytes(big), e, err)
	}
	if files, _ := s.bodyFiles(); len(files) != 0 {
		t.Errorf("body files after the refused creates: %d, want none", len(files))
	}
	e := mustCreate(t, s, "k", Meta{Size: 10, Header: map[string][]string{"Etag": {`"a"`}}})
	defer e.Release()
	err := e.Update(func(m *Meta) { m.Header["X-Big"] = big["X-Big"] })
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Update(adding %d bytes of headers) = %v, want ErrTooLarge", headerBytes(big), err)
	}
	if h := e.Meta().Header; len(h) != 1 || h["Etag"][0] != `"a"` {
		t.Errorf("headers after the refused Update = %v, want them unchanged", h)
	}
}

// legacyMeta is a record as written before range sets had their own key:
// Meta's JSON, ranges and epoch included.
type legacyMeta struct {
	Key           string              `json:"key"`
	ID            uint64              `json:"id"`
	Status        int                 `json:"status"`
	Header        map[string][]string `json:"header"`
	Size          int64               `json:"size"`
	Ranges        rangeutil.Set       `json:"ranges"`
	Epoch         uint64              `json:"epoch,omitempty"`
	RequestTime   time.Time           `json:"request_time"`
	ResponseTime  time.Time           `json:"response_time"`
	Created       time.Time           `json:"created"`
	Accessed      time.Time           `json:"accessed"`
	RequestHeader map[string][]string `json:"request_header,omitempty"`
}

// TestLegacyRecordsOpen: an index written before range sets had their own
// key opens, serves what it claims, and is moved to the new layout once.
func TestLegacyRecordsOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{manual: true})
	e := mustCreate(t, s, "new", Meta{Size: 300})
	id := e.id
	writeRange(t, e, 5, rangeutil.Range{Start: 0, End: 200})
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	e.Release()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := legacyMeta{Key: "old", ID: id, Status: 200, Header: map[string][]string{"Etag": {`"x"`}},
		Size: 300, Ranges: set([2]int64{0, 200}), Epoch: s.epoch, Created: created, Accessed: created}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the index as the old layout had it: one record, with ranges.
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, k := range [][]byte{recordKey("new"), rangesKey(id)} {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Set(recordKey("old"), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s = openStore(t, dir, Options{manual: true})
	defer mustClose(t, s)
	var raw []byte
	if err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(recordKey("old"))
		if err == nil {
			raw, err = item.ValueCopy(nil)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"ranges"`) {
		t.Errorf("record after Open = %s, want its range set moved out", raw)
	}
	if v := itemVersion(t, s, rangesKey(id)); v == 0 {
		t.Errorf("no range set under its own key after Open")
	}
	if got, want := usedOf(s), scanUsed(t, s); got != want || got < 200 {
		t.Errorf("used after Open = %d, scanned %d, want equal, with the 200 bytes claimed", got, want)
	}
	g := mustGet(t, s, "old")
	defer g.Release()
	if m := g.Meta(); !m.Ranges.Equal(set([2]int64{0, 200})) || m.Epoch != old.Epoch || m.Header["Etag"][0] != `"x"` || !m.Created.Equal(created) {
		t.Errorf("Meta after Open = %+v, want the legacy record's", m)
	}
	checkRange(t, g, 5, rangeutil.Range{Start: 0, End: 200})
	writeRange(t, g, 5, rangeutil.Range{Start: 200, End: 300})
	if err := g.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if m, err := s.load("old"); err != nil || m == nil || !m.Complete() {
		t.Errorf("load(old) after a checkpoint = %+v, %v, want it complete", m, err)
	}
}

// TestLongKeyHashed: a key over Badger's limit (a 66 KB URL) could not be
// stored at all, and every attempt failed with the key in the error. Now
// a key over maxIndexKey is stored under its hash, and a lookup compares
// the key the record holds, so no other key is ever served from it.
func TestLongKeyHashed(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{manual: true})
	long := "http://example.test/" + strings.Repeat("a", 70_000)
	e := mustCreate(t, s, long, Meta{Size: 100})
	writeRange(t, e, 6, rangeutil.Range{Start: 0, End: 100})
	e.Release()
	if rk := recordKey(long); len(rk) != 2+32 || string(rk[:2]) != "h/" {
		t.Errorf("recordKey(70 KB key) = %q..., want h/ and a SHA-256", rk[:min(len(rk), 10)])
	}
	if g, err := s.Get(long[:len(long)-1] + "b"); g != nil || err != nil {
		t.Errorf("Get(another long key) = %v, %v, want nil, nil", g, err)
	}
	mustClose(t, s)

	s = openStore(t, dir, Options{manual: true})
	defer mustClose(t, s)
	if keys, err := s.keys(); err != nil || len(keys) != 1 || keys[0] != long {
		t.Errorf("keys() = %d keys, %v, want the long key", len(keys), err)
	}
	g := mustGet(t, s, long)
	checkRange(t, g, 6, rangeutil.Range{Start: 0, End: 100})
	g.Release()

	// A record under the hash that holds another key is not this key's.
	other := long[:len(long)-1] + "c"
	raw, err := encodeRecord(&Meta{Key: other, ID: 3, Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(recordKey(long), raw) }); err != nil {
		t.Fatal(err)
	}
	if m, err := s.load(long); m != nil || err != nil {
		t.Errorf("load(key) with another key's record under its hash = %+v, %v, want nil, nil", m, err)
	}
}

// TestLongKeyErrorsBounded: errors and log lines about a key carry at
// most maxLogKey bytes of it.
func TestLongKeyErrorsBounded(t *testing.T) {
	var failing bool
	s := newStore(t, Options{openFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if failing {
			return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("injected")}
		}
		return os.OpenFile(name, flag, perm)
	}})
	long := strings.Repeat("k", 70_000)
	mustCreate(t, s, long, Meta{Size: 10}).Release()
	failing = true
	_, err := s.Get(long)
	if err == nil || len(err.Error()) > 2*maxLogKey+200 {
		t.Errorf("Get(70 KB key) with a failing open: error of %d bytes, want one of at most %d", len(fmtErr(err)), 2*maxLogKey+200)
	}
	if e, err := s.Create(long, Meta{Size: math.MaxInt64}); e != nil || len(fmtErr(err)) > 2*maxLogKey+200 {
		t.Errorf("Create(70 KB key, too large): error of %d bytes, want a short one", len(fmtErr(err)))
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
