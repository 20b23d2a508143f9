package proxy

import "testing"

// TestFillBuffersBounded: fills get large buffers up to maxFillBufs at
// once, small ones beyond, and a large one given back frees its slot.
func TestFillBuffersBounded(t *testing.T) {
	b := newBuffers()
	var out []*[]byte
	for i := range maxFillBufs + 3 {
		p := b.getFill()
		want := fillBufSize
		if i >= maxFillBufs {
			want = copyBufSize
		}
		if len(*p) != want {
			t.Fatalf("getFill() #%d: %d bytes, want %d", i+1, len(*p), want)
		}
		out = append(out, p)
	}
	b.put(out[0]) // a large one back: its slot is free again
	if p := b.getFill(); len(*p) != fillBufSize {
		t.Errorf("getFill() after a large buffer was put back: %d bytes, want %d", len(*p), fillBufSize)
	}
	if p := b.get(); len(*p) != copyBufSize {
		t.Errorf("get() = %d bytes, want %d", len(*p), copyBufSize)
	}
	for _, p := range out[maxFillBufs:] {
		b.put(p) // small ones do not touch the slots
	}
	if got := len(b.slots); got != maxFillBufs {
		t.Errorf("%d large buffers counted out, want %d", got, maxFillBufs)
	}
}
