package proxy

import "sync"

// Copy buffer sizes. A fill moves a cold download from the upstream socket
// to the body file, and its client follows with sendfile, one round per
// buffer: with 1 MiB instead of 256 KiB a cold 1 GiB download took 25% less
// of the proxy's CPU and time here (fewer reads, writes, wake-ups and
// sends). Other copies (relays, uncached continuations) are fine with the
// small size.
const (
	copyBufSize = 256 << 10
	fillBufSize = 1 << 20
	// maxFillBufs bounds the large buffers out at once, so that a hundred
	// parallel downloads cost 16 MiB of them, not 100: the fills beyond
	// take a small one.
	maxFillBufs = 16
)

// buffers pools the copy buffers. The zero value is not usable; see
// newBuffers.
type buffers struct {
	small, large sync.Pool
	// slots holds a token per large buffer out.
	slots chan struct{}
}

func newBuffers() *buffers {
	b := &buffers{slots: make(chan struct{}, maxFillBufs)}
	b.small.New = func() any { s := make([]byte, copyBufSize); return &s }
	b.large.New = func() any { s := make([]byte, fillBufSize); return &s }
	return b
}

// get returns a small buffer; give it back with put.
func (b *buffers) get() *[]byte { return b.small.Get().(*[]byte) }

// getFill returns a fill's buffer: a large one while fewer than
// maxFillBufs are out, else a small one. Give it back with put.
func (b *buffers) getFill() *[]byte {
	select {
	case b.slots <- struct{}{}:
		return b.large.Get().(*[]byte)
	default:
		return b.get()
	}
}

// put returns a buffer from get or getFill.
func (b *buffers) put(p *[]byte) {
	if len(*p) == fillBufSize {
		b.large.Put(p)
		<-b.slots
		return
	}
	b.small.Put(p)
}
