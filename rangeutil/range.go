package rangeutil

// Range is a half-open byte interval [Start, End). Offsets are non-negative in
// every Range this package produces; a Range with End <= Start is empty.
type Range struct{ Start, End int64 }

// Len returns the number of bytes in r, 0 when r is empty.
func (r Range) Len() int64 {
	if r.Empty() {
		return 0
	}
	return r.End - r.Start
}

// Empty reports whether r holds no byte (End <= Start).
func (r Range) Empty() bool { return r.End <= r.Start }

// Contains reports whether byte off lies in r: Start <= off < End.
func (r Range) Contains(off int64) bool { return r.Start <= off && off < r.End }
