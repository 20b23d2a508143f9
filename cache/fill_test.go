package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// fillSpec describes a fill made before the claim under test: claimed at
// [start, end) and written up to pos.
type fillSpec struct{ start, end, pos int64 }

func TestClaim(t *testing.T) {
	const size = 1000
	const wantNil, wantNew = -2, -1
	tests := []struct {
		name     string
		size     int64
		present  [][2]int64
		fills    []fillSpec
		off, end int64
		// want is wantNil, wantNew (a new fill [wantStart, wantEnd),
		// owner true) or i ≥ 0: the i-th fill of the setup, owner false.
		want               int
		wantStart, wantEnd int64
	}{
		{name: "fresh", off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: size},
		{name: "fresh, middle", off: 400, end: 600, want: wantNew, wantStart: 400, wantEnd: 600},
		{name: "cut at size", off: 0, end: 5000, want: wantNew, wantStart: 0, wantEnd: size},
		{name: "unknown size", size: -1, off: 0, end: 5000, want: wantNew, wantStart: 0, wantEnd: 5000},
		{name: "present", present: [][2]int64{{300, 400}}, off: 350, end: size, want: wantNil},
		{name: "present, first byte", present: [][2]int64{{300, 400}}, off: 300, end: size, want: wantNil},
		{name: "present, last byte", present: [][2]int64{{300, 400}}, off: 399, end: size, want: wantNil},
		{name: "after present", present: [][2]int64{{300, 400}}, off: 400, end: size, want: wantNew, wantStart: 400, wantEnd: size},
		{name: "cut at present", present: [][2]int64{{300, 400}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 300},
		{name: "cut at nearest present", present: [][2]int64{{300, 400}, {100, 200}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 100},
		{name: "end before present", present: [][2]int64{{300, 400}}, off: 0, end: 50, want: wantNew, wantStart: 0, wantEnd: 50},
		{name: "cut at fill", fills: []fillSpec{{500, 800, 500}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 500},
		{name: "cut at nearest fill", fills: []fillSpec{{500, 800, 500}, {200, 300, 200}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 200},
		{name: "cut at fill before present", present: [][2]int64{{300, 400}}, fills: []fillSpec{{200, 300, 200}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 200},
		{name: "cut at present before fill", present: [][2]int64{{100, 200}}, fills: []fillSpec{{600, 700, 600}}, off: 0, end: size, want: wantNew, wantStart: 0, wantEnd: 100},
		{name: "fill's first byte", fills: []fillSpec{{500, 800, 500}}, off: 500, end: size, want: 0},
		{name: "inside fill", fills: []fillSpec{{500, 800, 500}}, off: 700, end: size, want: 0},
		{name: "fill's last byte", fills: []fillSpec{{500, 800, 500}}, off: 799, end: size, want: 0},
		{name: "after fill", fills: []fillSpec{{500, 800, 500}}, off: 800, end: size, want: wantNew, wantStart: 800, wantEnd: size},
		{name: "written part of fill", fills: []fillSpec{{500, 800, 600}}, off: 550, end: size, want: wantNil},
		{name: "fill's position", fills: []fillSpec{{500, 800, 600}}, off: 600, end: size, want: 0},
		{name: "ahead of fill's position", fills: []fillSpec{{500, 800, 600}}, off: 750, end: size, want: 0},
		{name: "second fill", fills: []fillSpec{{100, 200, 100}, {500, 800, 600}}, off: 650, end: size, want: 1},
		{name: "between fills", fills: []fillSpec{{100, 200, 150}, {500, 800, 600}}, off: 200, end: size, want: wantNew, wantStart: 200, wantEnd: 500},
		{name: "written fill", fills: []fillSpec{{100, 200, 200}}, off: 150, end: size, want: wantNil},
	}
	s := newStore(t, Options{}) // one store, one key per case: opening Badger is slow
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Meta{Size: size}
			if tt.size != 0 {
				m.Size = tt.size
			}
			e := mustCreate(t, s, tt.name, m)
			defer e.Release()
			for _, p := range tt.present {
				writeRange(t, e, 0, rangeutil.Range{Start: p[0], End: p[1]})
			}
			var fills []*Fill
			for _, fs := range tt.fills {
				f, owner := e.Claim(fs.start, fs.end)
				if f == nil || !owner || f.Start() != fs.start || f.End() != fs.end {
					t.Fatalf("setup: Claim(%d, %d) = %v, %v, want a new fill [%d, %d)", fs.start, fs.end, f, owner, fs.start, fs.end)
				}
				if n := fs.pos - fs.start; n > 0 {
					if _, err := f.Write(content(0, fs.start, int(n))); err != nil {
						t.Fatalf("setup: Write(%d bytes) = %v", n, err)
					}
				}
				fills = append(fills, f)
			}

			ch := e.Changed()
			f, owner := e.Claim(tt.off, tt.end)
			switch {
			case tt.want == wantNil:
				if f != nil || owner {
					t.Errorf("Claim(%d, %d) = [%d, %d), %v, want nil, false", tt.off, tt.end, f.Start(), f.End(), owner)
				}
			case tt.want == wantNew:
				if f == nil {
					t.Fatalf("Claim(%d, %d) = nil, want a new fill [%d, %d)", tt.off, tt.end, tt.wantStart, tt.wantEnd)
				}
				if !owner || f.Start() != tt.wantStart || f.End() != tt.wantEnd || f.Pos() != tt.wantStart {
					t.Errorf("Claim(%d, %d) = [%d, %d) at %d, owner %v, want [%d, %d) at %d, owner true",
						tt.off, tt.end, f.Start(), f.End(), f.Pos(), owner, tt.wantStart, tt.wantEnd, tt.wantStart)
				}
				for i, g := range fills {
					if f == g {
						t.Errorf("Claim(%d, %d) = setup fill %d, want a new one", tt.off, tt.end, i)
					}
				}
				if !closed(ch) {
					t.Errorf("Claim(%d, %d) made a fill without closing Changed()", tt.off, tt.end)
				}
			default:
				if f != fills[tt.want] || owner {
					t.Errorf("Claim(%d, %d) = %p, owner %v, want setup fill %d %p, owner false", tt.off, tt.end, f, owner, tt.want, fills[tt.want])
				}
			}
		})
	}
}

func TestFillWrite(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 100})
	defer e.Release()
	f, _ := e.Claim(10, 50)
	if f.Start() != 10 || f.End() != 50 || f.Pos() != 10 {
		t.Fatalf("Claim(10, 50) = Start %d End %d Pos %d, want 10, 50, 10", f.Start(), f.End(), f.Pos())
	}
	if n, err := f.Write(content(0, 10, 15)); n != 15 || err != nil {
		t.Fatalf("Write(15 bytes) = %d, %v, want 15, nil", n, err)
	}
	if got := f.Pos(); got != 25 {
		t.Errorf("Pos() after 15 bytes = %d, want 25", got)
	}
	if n, err := f.Write(content(0, 25, 26)); n != 0 || err == nil {
		t.Errorf("Write(26 bytes) at 25 of [10, 50) = %d, %v, want 0, an error", n, err)
	}
	if got := f.Pos(); got != 25 {
		t.Errorf("Pos() after an overrunning Write = %d, want 25", got)
	}
	if got := e.Meta().Ranges; !got.Equal(set([2]int64{10, 25})) {
		t.Errorf("Meta().Ranges after an overrunning Write = %v, want [10,25)", got)
	}
	if n, err := f.Write(content(0, 25, 25)); n != 25 || err != nil {
		t.Errorf("Write(25 bytes) up to End = %d, %v, want 25, nil", n, err)
	}
	if n, err := f.Write([]byte{0}); n != 0 || err == nil {
		t.Errorf("Write(1 byte) at End = %d, %v, want 0, an error", n, err)
	}
	if n := readable(e, 10); n != 40 {
		t.Errorf("readable(10) = %d, want 40", n)
	}
	checkRange(t, e, 0, rangeutil.Range{Start: 10, End: 50})
}

func TestFillState(t *testing.T) {
	errUpstream := errors.New("upstream reset")
	tests := []struct {
		name     string
		validate bool
		write    int64
		finish   error
		wantErr  error
	}{
		{name: "complete", validate: true, write: 100, finish: nil, wantErr: nil},
		{name: "short, nil error", validate: true, write: 40, finish: nil, wantErr: ErrFillAbandoned},
		{name: "nothing written, nil error", finish: nil, wantErr: ErrFillAbandoned},
		{name: "failed", validate: true, write: 40, finish: errUpstream, wantErr: errUpstream},
		{name: "failed before validation", finish: errUpstream, wantErr: errUpstream},
		{name: "error after all bytes", validate: true, write: 100, finish: errUpstream, wantErr: errUpstream},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCreate(t, s, tt.name, Meta{Size: 100})
			defer e.Release()
			f, _ := e.Claim(0, 100)
			if v, d, err := f.State(); v || d || err != nil {
				t.Errorf("State() of a new fill = %v, %v, %v, want false, false, nil", v, d, err)
			}
			if tt.validate {
				f.Validated()
				if v, d, err := f.State(); !v || d || err != nil {
					t.Errorf("State() after Validated = %v, %v, %v, want true, false, nil", v, d, err)
				}
			}
			if tt.write > 0 {
				if _, err := f.Write(content(0, 0, int(tt.write))); err != nil {
					t.Fatalf("Write(%d bytes) = %v", tt.write, err)
				}
			}
			if _, d, _ := f.State(); d {
				t.Errorf("State() before Finish: done = true, want false")
			}
			f.Finish(tt.finish)
			v, d, err := f.State()
			if v != tt.validate || !d || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("State() after Finish(%v) = %v, %v, %v, want %v, true, %v", tt.finish, v, d, err, tt.validate, tt.wantErr)
			}
			f.Finish(errors.New("second"))
			if _, _, err2 := f.State(); err2 != err {
				t.Errorf("State() after a second Finish: err = %v, want the first, %v", err2, err)
			}
			// A finished fill no longer covers its bytes: the next claim
			// for its missing part is new.
			if tt.write < 100 {
				g, owner := e.Claim(tt.write, 100)
				if g == nil || g == f || !owner || g.Start() != tt.write || g.End() != 100 {
					t.Errorf("Claim(%d, 100) after Finish = %p, %v, want a new fill [%d, 100)", tt.write, g, owner, tt.write)
				}
			}
		})
	}
}

// TestChanged checks that each change wakes waiters: the channel taken
// before the change is closed after it, and a fresh one is open.
func TestChanged(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *Store, e *Entry) *Fill
		action func(t *testing.T, s *Store, e *Entry, f *Fill)
	}{
		{name: "WriteAt", action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 1})
		}},
		{name: "Claim", action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			e.Claim(0, 10)
		}},
		{name: "Fill.Write", setup: claim, action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			if _, err := f.Write([]byte{1, 2}); err != nil {
				t.Fatalf("Write() = %v", err)
			}
		}},
		{name: "Validated", setup: claim, action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			f.Validated()
		}},
		{name: "Finish(nil)", setup: claim, action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			f.Finish(nil)
		}},
		{name: "Finish(err)", setup: claim, action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			f.Finish(context.Canceled)
		}},
		{name: "Update", action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			if err := e.Update(func(m *Meta) { m.Size = 5 }); err != nil {
				t.Fatalf("Update() = %v", err)
			}
		}},
		{name: "Drop", action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			e.Drop()
		}},
		{name: "new version", action: func(t *testing.T, s *Store, e *Entry, f *Fill) {
			mustCreate(t, s, e.Key(), Meta{Size: 10}).Release()
		}},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCreate(t, s, tt.name, Meta{Size: 10})
			defer e.Release()
			var f *Fill
			if tt.setup != nil {
				f = tt.setup(t, s, e)
			}
			ch := e.Changed()
			if closed(ch) {
				t.Fatalf("Changed() before %s is closed, want open", tt.name)
			}
			tt.action(t, s, e, f)
			if !closed(ch) {
				t.Errorf("Changed() taken before %s is open after it, want closed", tt.name)
			}
			if closed(e.Changed()) {
				t.Errorf("Changed() taken after %s is closed, want open", tt.name)
			}
		})
	}
}

func claim(t *testing.T, s *Store, e *Entry) *Fill {
	f, owner := e.Claim(0, 10)
	if f == nil || !owner {
		t.Fatalf("Claim(0, 10) = %v, %v, want a new fill", f, owner)
	}
	return f
}

// TestLeaveAbandonsFills: when the last client leaves, every fill's cancel
// runs (outside the entry's lock: a cancel may Finish its fill), and the
// next Claim joins the stopping fill until it ends, then starts afresh.
func TestLeaveAbandonsFills(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 1000})
	defer e.Release()
	e.Acquire()
	first := e.Join()
	e.Acquire()
	second := e.Join()
	a, _ := e.Claim(0, 500)
	b, _ := e.Claim(500, 1000)
	if a == nil || b == nil || a == b {
		t.Fatalf("Claim(0, 500), Claim(500, 1000) = %p, %p, want two fills", a, b)
	}
	if _, err := a.Write(content(0, 0, 100)); err != nil {
		t.Fatal(err)
	}
	var cancelA, cancelB int
	a.OnAbandon(func() { cancelA++ }, nil)
	b.OnAbandon(func() {
		cancelB++
		b.Finish(context.Canceled) // takes the entry's lock: must not deadlock
	}, nil)
	if _, owner := e.Claim(100, 500); owner {
		t.Errorf("Claim(100, 500) with a client joined: owner = true, want false (joins a)")
	}

	first.Close()
	first.Close() // a second Close does nothing
	if cancelA != 0 || cancelB != 0 {
		t.Errorf("after one of two clients left: cancels ran %d, %d times, want 0, 0", cancelA, cancelB)
	}
	second.Close()
	if cancelA != 1 || cancelB != 1 {
		t.Errorf("after the last client left: cancels ran %d, %d times, want 1, 1", cancelA, cancelB)
	}
	if _, d, err := b.State(); !d || !errors.Is(err, context.Canceled) {
		t.Errorf("b.State() after its cancel finished it: done %v, err %v, want true, context.Canceled", d, err)
	}

	// A client arriving now joins a while it writes what its upstream had
	// already sent (nothing is fetched twice), and claims afresh once a
	// ends.
	e.Acquire()
	third := e.Join()
	defer third.Close()
	if f, owner := e.Claim(a.Pos(), 1000); f != a || owner {
		t.Fatalf("Claim(%d, 1000) while abandoned a still runs = %p, %v, want a (%p), owner false", a.Pos(), f, owner, a)
	}
	a.Finish(context.Canceled)
	f, owner := e.Claim(a.Pos(), 1000)
	if f == nil || f == a || f == b || !owner {
		t.Fatalf("Claim(%d, 1000) after a ended = %p, %v, want a new fill, owner true", a.Pos(), f, owner)
	}
	if f.Start() != a.Pos() {
		t.Errorf("new fill Start() = %d, want %d", f.Start(), a.Pos())
	}
	if g, owner := e.Claim(300, 1000); g != f || owner {
		t.Errorf("Claim(300, 1000) = %p, owner %v, want the new fill %p, owner false", g, owner, f)
	}
}

// TestLeaveWithoutCancel: a fill whose owner set no cancel function is
// abandoned without one, and once it ends, its bytes can be claimed again.
func TestLeaveWithoutCancel(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 100})
	defer e.Release()
	e.Acquire()
	h := e.Join()
	f, _ := e.Claim(0, 100)
	h.Close()
	f.Finish(context.Canceled)
	if g, owner := e.Claim(0, 100); g == f || !owner {
		t.Errorf("Claim(0, 100) after the abandoned fill ended = %p, %v, want a new fill, owner true", g, owner)
	}
}

// TestConcurrentFillAndReaders streams 4 MiB through one fill in 64 KiB
// writes (checkpointing every 512 KiB on the way) while 8 readers wait on
// Changed and readable and check every byte.
func TestConcurrentFillAndReaders(t *testing.T) {
	const size = 4 << 20
	const chunk = 64 << 10
	want := content(0, 0, size)
	s := newStore(t, Options{CheckpointBytes: 512 << 10})
	e := mustCreate(t, s, "k", Meta{Size: size})
	e.Acquire()
	client := e.Join()
	f, owner := e.Claim(0, size)
	if !owner {
		t.Fatalf("Claim(0, %d) owner = false, want true", size)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		e.Acquire()
		wg.Go(func() {
			defer e.Release()
			read := readAll
			if i%2 == 1 {
				read = readAllFile
			}
			if err := read(e, f, size, want); err != nil {
				t.Errorf("reader %d: %v", i, err)
			}
		})
	}
	e.Acquire()
	wg.Go(func() {
		defer e.Release()
		f.Validated()
		for off := int64(0); off < size; off += chunk {
			if n, err := f.Write(want[off : off+chunk]); n != chunk || err != nil {
				t.Errorf("Write(%d bytes) at %d = %d, %v, want %d, nil", chunk, off, n, err, chunk)
				f.Finish(err)
				return
			}
		}
		f.Finish(nil)
	})
	wg.Wait()
	client.Close()
	waitBackground(e, 1)
	if _, d, err := f.State(); !d || err != nil {
		t.Errorf("fill State() = done %v, err %v, want true, nil", d, err)
	}
	if m := e.Meta(); !m.Complete() {
		t.Errorf("Meta().Complete() = false (Ranges %v), want true", m.Ranges)
	}
	e.Release()
	if n := len(s.live); n != 0 {
		t.Errorf("len(live) after all Releases = %d, want 0", n)
	}
	m, err := s.load("k")
	if err != nil || m == nil || !m.Complete() {
		t.Errorf("index[k] after the last Release = %+v, %v, want complete", m, err)
	}
}

// readAll reads e from 0 to size with ReadAt as bytes arrive, and compares
// them with want.
func readAll(e *Entry, f *Fill, size int64, want []byte) error {
	return readWith(e, f, size, want, e.ReadAt)
}

// readAllFile is readAll through OpenReader's descriptor, the one the
// zero-copy (sendfile) path reads from.
func readAllFile(e *Entry, f *Fill, size int64, want []byte) error {
	r, err := e.OpenReader()
	if err != nil {
		return err
	}
	defer r.Close()
	return readWith(e, f, size, want, r.ReadAt)
}

func readWith(e *Entry, f *Fill, size int64, want []byte, readAt func([]byte, int64) (int, error)) error {
	buf := make([]byte, 48<<10) // not a divisor of the writes
	for off := int64(0); off < size; {
		ch := e.Changed() // before the state it waits on: no lost wake-up
		n := readable(e, off)
		if n == 0 {
			if _, done, err := f.State(); done && readable(e, off) == 0 {
				return fmt.Errorf("fill done (err %v) with byte %d missing", err, off)
			}
			<-ch
			continue
		}
		p := buf[:min(n, int64(len(buf)))]
		if k, err := readAt(p, off); k != len(p) || err != nil {
			return fmt.Errorf("ReadAt(%d bytes, %d) = %d, %v", len(p), off, k, err)
		}
		if !bytes.Equal(p, want[off:off+int64(len(p))]) {
			return fmt.Errorf("bytes [%d, %d) differ from what was written", off, off+int64(len(p)))
		}
		off += int64(len(p))
	}
	return nil
}

// TestConcurrentClaims: 8 clients that each need the body from a different
// offset to the end claim and fill what is missing, or wait for the fill
// that covers it. Every byte is fetched exactly once (one fetch per missing
// span) and every client reads correct bytes.
func TestConcurrentClaims(t *testing.T) {
	const size = 1 << 20
	const chunk = 16 << 10
	want := content(0, 0, size)
	s := newStore(t, Options{CheckpointBytes: 256 << 10})
	e := mustCreate(t, s, "k", Meta{Size: size})
	defer e.Release()

	var mu sync.Mutex
	var fetched int64
	var wg sync.WaitGroup
	for i := range 8 {
		e.Acquire()
		h := e.Join()
		wg.Go(func() {
			defer h.Close()
			start := int64(i) * (size / 8) / 3 * 2 // 0, ⅔ × i/8 of the body: overlapping needs
			if err := fetchAndRead(e, start, size, want, chunk, func(n int64) {
				mu.Lock()
				fetched += n
				mu.Unlock()
			}); err != nil {
				t.Errorf("client %d from %d: %v", i, start, err)
			}
		})
	}
	wg.Wait()
	waitBackground(e, 1)
	if fetched != size {
		t.Errorf("bytes fetched by fill owners = %d, want %d (each byte once)", fetched, size)
	}
	if m := e.Meta(); !m.Complete() {
		t.Errorf("Meta().Complete() = false (Ranges %v), want true", m.Ranges)
	}
}

// fetchAndRead reads [start, size) of e like a proxy client: what is
// present is read, what is missing is claimed and written (as if fetched,
// counted by fetch) or waited for.
func fetchAndRead(e *Entry, start, size int64, want []byte, chunk int64, fetch func(int64)) error {
	for off := start; off < size; {
		ch := e.Changed()
		if n := readable(e, off); n > 0 {
			p := make([]byte, n)
			if k, err := e.ReadAt(p, off); k != len(p) || err != nil {
				return fmt.Errorf("ReadAt(%d bytes, %d) = %d, %v", len(p), off, k, err)
			}
			if !bytes.Equal(p, want[off:off+n]) {
				return fmt.Errorf("bytes [%d, %d) differ from what was written", off, off+n)
			}
			off += n
			continue
		}
		f, owner := e.Claim(off, size)
		if f == nil {
			continue // present by now
		}
		if !owner {
			<-ch
			continue
		}
		f.Validated()
		for pos := f.Start(); pos < f.End(); pos += chunk {
			p := want[pos:min(pos+chunk, f.End())]
			if _, err := f.Write(p); err != nil {
				f.Finish(err)
				return fmt.Errorf("fill [%d, %d) Write at %d: %v", f.Start(), f.End(), pos, err)
			}
			fetch(int64(len(p)))
		}
		f.Finish(nil)
	}
	return nil
}

// TestFillShrink: a shrunk fill frees the bytes past its new end for
// another claim, and writes past that end are cut, not refused.
func TestFillShrink(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 1000})
	defer e.Release()
	f, _ := e.Claim(0, 1000)
	if _, err := f.Write(content(0, 0, 100)); err != nil {
		t.Fatal(err)
	}
	if f.Shrink(50) || f.Shrink(1000) {
		t.Error("Shrink below the position or to the same end = true, want false")
	}
	if !f.Shrink(400) || f.End() != 400 {
		t.Fatalf("Shrink(400): end %d, want 400", f.End())
	}
	g, owner := e.Claim(400, 1000)
	if !owner || g.Start() != 400 || g.End() != 1000 {
		t.Fatalf("Claim(400, 1000) after the shrink = [%d, %d) owner %v, want [400, 1000) owner", g.Start(), g.End(), owner)
	}
	if n, err := f.Write(content(0, 100, 500)); n != 300 || err != nil {
		t.Errorf("Write of 500 bytes at 100 with end 400 = %d, %v, want 300, nil", n, err)
	}
	if got := e.Meta().Ranges; !got.Equal(set([2]int64{0, 400})) {
		t.Errorf("ranges %v, want [0, 400)", got)
	}
}
