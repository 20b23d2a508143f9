package testorigin

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// blockSize is the unit in which bodies are generated and written: large
// enough that a 256 MiB body costs a few thousand writes, small enough that
// memory stays flat however large the resource.
const blockSize = 32 << 10

// Byte returns byte i of version v of the deterministic content.
//
// Every byte is a function of (v, i) only, so a test can check any slice of a
// 256 MiB body without storing it. The content comes from a 64-bit mixer over
// the 8-byte word index, so it has no short period: an off-by-one, a swapped
// block or bytes of two versions spliced together all change Sum.
func Byte(v int, i int64) byte {
	return byte(word(v, i>>3) >> (8 * uint(i&7)))
}

// word returns the 8 content bytes of word w (bytes [8w, 8w+8)) of version v,
// little-endian. It is the splitmix64 finaliser over w and v.
func word(v int, w int64) uint64 {
	x := uint64(w) ^ uint64(int64(v))*0x9e3779b97f4a7c15
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fill writes bytes [off, off+len(p)) of version v into p. It works a word at
// a time, falling back to Byte only for the unaligned head and tail.
func fill(v int, off int64, p []byte) {
	for len(p) > 0 && off&7 != 0 {
		p[0] = Byte(v, off)
		p, off = p[1:], off+1
	}
	n := fillWords(v, off>>3, p)
	p, off = p[n:], off+int64(n)
	for i := range p {
		p[i] = Byte(v, off+int64(i))
	}
}

// fillWords writes the whole words of version v that fit in p, from word w
// on, and returns how many bytes it wrote. Words are built in a stack array
// and copied out 4 KiB at a time because the race detector checks every
// store to the heap but none to the stack: storing straight into p made a
// 256 MiB body take many seconds under -race.
func fillWords(v int, w int64, p []byte) int {
	var b [512 * 8]byte
	done := 0
	for len(p)-done >= 8 {
		n := min((len(p)-done)/8, 512)
		for j := range n {
			x := word(v, w+int64(j))
			b[j*8+0] = byte(x)
			b[j*8+1] = byte(x >> 8)
			b[j*8+2] = byte(x >> 16)
			b[j*8+3] = byte(x >> 24)
			b[j*8+4] = byte(x >> 32)
			b[j*8+5] = byte(x >> 40)
			b[j*8+6] = byte(x >> 48)
			b[j*8+7] = byte(x >> 56)
		}
		done += copy(p[done:], b[:n*8])
		w += int64(n)
	}
	return done
}

// contentReader reads version v from off up to end (exclusive).
type contentReader struct {
	v        int
	off, end int64
}

// NewReader returns a reader of n bytes of version v starting at offset off.
// Reads fill the caller's buffer a word at a time with no per-byte calls, so
// copying 256 MiB through a 32 KiB buffer takes well under a second, even
// under -race.
func NewReader(v int, off, n int64) io.Reader {
	return &contentReader{v: v, off: off, end: off + max(n, 0)}
}

// Read implements io.Reader.
func (r *contentReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if rest := r.end - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	fill(r.v, r.off, p)
	r.off += int64(len(p))
	return len(p), nil
}

// Sum returns the hex sha256 of bytes [0, size) of version v: what a client
// that downloaded the whole resource must have received.
func Sum(v int, size int64) string {
	h := sha256.New()
	buf := make([]byte, blockSize)
	if _, err := io.CopyBuffer(h, NewReader(v, 0, size), buf); err != nil {
		panic("testorigin: Sum: " + err.Error()) // the content reader never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}
