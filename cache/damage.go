package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// ErrIndexDamaged is returned by Open when the index cannot be read in
// full: a table file truncated or altered, a manifest that does not
// replay, a record that does not decode. Open then deletes nothing: a scan
// that may have missed records must not decide which body files are
// orphans. ResetIndex is the way out.
var ErrIndexDamaged = errors.New("cache: index damaged")

// indexDamaged wraps cause as ErrIndexDamaged, naming the index directory.
func indexDamaged(dir string, cause error) error {
	return fmt.Errorf("%w: %s: %w (body files left untouched)", ErrIndexDamaged, filepath.Join(dir, "index"), cause)
}

// indexError is the error of a failure to open the index under dir: a
// failure of the system (permissions, a full disk, an I/O error) is
// reported as it is, since moving the index aside would not help; any
// other is damage to the index's files, or a missing file (ENOENT).
func indexError(dir string, err error) error {
	if systemFailure(err) {
		return fmt.Errorf("cache: open index in %s: %w", dir, err)
	}
	return indexDamaged(dir, err)
}

// systemErrnos are the failures of the system, not of the index's files.
var systemErrnos = []syscall.Errno{
	syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT,
	syscall.EIO, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM,
}

// systemFailure reports whether err is one of systemErrnos. Badger wraps
// errors into text (y.Wrap outside its debug mode), so the text counts too.
func systemFailure(err error) bool {
	for _, e := range systemErrnos {
		if errors.Is(err, e) || strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}

// checkIndexFiles reads every table the manifest of dir/index lists, and
// every block of each against its checksum, before Badger opens them.
// Badger opens tables in goroutines of its own, where a truncated table
// panics (out of range, no recovery possible: the process dies at every
// start), and it drops a table whose index fails its checksum without a
// word, so the startup scan would miss its records and take their body
// files for orphans. Here both are errors, and a panic is recovered.
func checkIndexFiles(dir string, bopts badger.Options) error {
	idx := filepath.Join(dir, "index")
	fp, err := os.Open(filepath.Join(idx, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return checkNoTables(idx) // a new index, unless its tables are there
	}
	if err != nil {
		return fmt.Errorf("cache: open index manifest: %w", err)
	}
	defer fp.Close()
	mf, end, err := badger.ReplayManifestFile(fp, bopts.ExternalMagicVersion, bopts)
	if err != nil {
		return fmt.Errorf("%s: %w", badger.ManifestFilename, err)
	}
	if fi, err := fp.Stat(); err == nil && fi.Size() > end {
		// Badger would cut the manifest here and delete every table the
		// lost part named.
		return fmt.Errorf("%s: %d bytes past its last complete change", badger.ManifestFilename, fi.Size()-end)
	}
	for id, tm := range mf.Tables {
		if err := checkTable(table.NewFilename(id, idx), tm, bopts); err != nil {
			return err
		}
	}
	return nil
}

// checkNoTables fails when idx holds table files without a manifest:
// Badger would start a new manifest and delete them all.
func checkNoTables(idx string) error {
	names, err := filepath.Glob(filepath.Join(idx, "*.sst"))
	if err != nil || len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%s missing beside %d table files", badger.ManifestFilename, len(names))
}

// checkTable opens one table read-only and verifies its checksums.
func checkTable(path string, tm badger.TableManifest, bopts badger.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: cannot be read (cut short or overwritten?): %s", filepath.Base(path), firstLine(fmt.Sprint(r)))
		}
	}()
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:    true,
		ChkMode:     options.OnTableRead,
		BlockSize:   bopts.BlockSize,
		Compression: tm.Compression,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return t.Close(-1)
}

// firstLine returns the first non-empty line of s: Badger's panic messages
// carry a multi-line dump.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "==") {
			return l
		}
	}
	return s
}

// recovered runs fn, turning a panic (Badger reading a damaged file in the
// caller's goroutine) into an error.
func recovered(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("badger panicked: %s", firstLine(fmt.Sprint(r)))
		}
	}()
	return fn()
}

// openBadger is badger.Open with a panic turned into an error: the replay
// of its write-ahead files runs in the caller's goroutine.
func openBadger(bopts badger.Options) (db *badger.DB, err error) {
	err = recovered(func() error {
		var oerr error
		db, oerr = badger.Open(bopts)
		return oerr
	})
	return db, err
}

// ResetIndex is the way out of ErrIndexDamaged: it moves dir/index aside
// to dir/index.damaged-<UTC time> (kept for inspection; delete it at will)
// and removes every body file, since without the index nothing says what
// a body file holds or which of its bytes are good. The next Open starts
// with an empty cache. It fails with ErrLocked while a process uses dir.
func ResetIndex(dir string, now time.Time) (aside string, removed int, err error) {
	lock, err := lockDir(dir)
	if err != nil {
		return "", 0, err
	}
	defer lock.Close()
	idx := filepath.Join(dir, "index")
	aside = idx + ".damaged-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(idx, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", 0, fmt.Errorf("cache: move damaged index aside: %w", err)
	}
	s := &Store{dir: dir}
	files, err := s.bodyFiles()
	if errors.Is(err, fs.ErrNotExist) {
		return aside, 0, nil
	}
	if err != nil {
		return aside, 0, err
	}
	for id := range files {
		if err := os.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return aside, removed, fmt.Errorf("cache: reset index: %w", err)
		}
		removed++
	}
	return aside, removed, nil
}

// maxLogKey bounds how much of a key a log line or an error carries: keys
// come from clients (URLs of any length), and a log line must not.
const maxLogKey = 256

// logKey returns key for a log line: whole when short, else its first
// maxLogKey bytes and its length.
func logKey(key string) string {
	if len(key) <= maxLogKey {
		return key
	}
	return fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(key[:maxLogKey], ""), len(key))
}
