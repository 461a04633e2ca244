package crdt

import (
	"slices"
	"strings"
)

// Dot names one event: the Counter-th event of Node on some key.
type Dot struct {
	Node    NodeID
	Counter uint64
}

func (d Dot) String() string { return d.Node.String() + ":" + itoa(d.Counter) }

func compareDots(a, b Dot) int {
	switch {
	case a.Node < b.Node:
		return -1
	case a.Node > b.Node:
		return 1
	case a.Counter < b.Counter:
		return -1
	case a.Counter > b.Counter:
		return 1
	}
	return 0
}

// VersionVector maps nodes to counters, as a slice sorted by node with no
// zero counters: domains are small, so a slice beats a map in both speed and
// garbage. Values are immutable: operations return new vectors.
type VersionVector []VVEntry

// VVEntry is one node's counter in a VersionVector.
type VVEntry struct {
	Node    NodeID
	Counter uint64
}

// Get returns n's counter, 0 when absent.
func (v VersionVector) Get(n NodeID) uint64 {
	i, ok := v.find(n)
	if !ok {
		return 0
	}
	return v[i].Counter
}

func (v VersionVector) find(n NodeID) (int, bool) {
	return slices.BinarySearchFunc(v, n, func(e VVEntry, n NodeID) int {
		switch {
		case e.Node < n:
			return -1
		case e.Node > n:
			return 1
		}
		return 0
	})
}

// With returns a copy of v with n's counter set to c (removed when 0).
func (v VersionVector) With(n NodeID, c uint64) VersionVector {
	i, ok := v.find(n)
	out := make(VersionVector, 0, len(v)+1)
	out = append(out, v[:i]...)
	if c != 0 {
		out = append(out, VVEntry{n, c})
	}
	if ok {
		i++
	}
	return append(out, v[i:]...)
}

// Covers reports whether the vector includes event d.
func (v VersionVector) Covers(d Dot) bool { return d.Counter <= v.Get(d.Node) }

// Descends reports whether v has seen everything o has.
func (v VersionVector) Descends(o VersionVector) bool {
	for _, e := range o {
		if v.Get(e.Node) < e.Counter {
			return false
		}
	}
	return true
}

// Equal reports whether both vectors hold the same counters.
func (v VersionVector) Equal(o VersionVector) bool { return slices.Equal(v, o) }

// MergeVV returns the pointwise maximum of a and b.
func MergeVV(a, b VersionVector) VersionVector {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make(VersionVector, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Node < b[j].Node:
			out = append(out, a[i])
			i++
		case a[i].Node > b[j].Node:
			out = append(out, b[j])
			j++
		default:
			out = append(out, VVEntry{a[i].Node, max(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (v VersionVector) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, e := range v {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(e.Node.String() + ":" + itoa(e.Counter))
	}
	sb.WriteByte('}')
	return sb.String()
}

// Context is a causal context: a set of dots, kept as a version vector (every
// dot up to each node's counter) plus a cloud of dots beyond it. A write made
// with a client's context must not cover the writing node's own dots that the
// client never saw, which is why the new dot goes to the cloud instead of
// raising the vector over a gap. Contexts are immutable values.
type Context struct {
	VV    VersionVector
	Cloud []Dot // sorted; none covered by VV, none adjacent to it
}

// Covers reports whether the context includes dot d.
func (c Context) Covers(d Dot) bool {
	if c.VV.Covers(d) {
		return true
	}
	_, ok := slices.BinarySearchFunc(c.Cloud, d, compareDots)
	return ok
}

// Max returns the largest counter of n in the context.
func (c Context) Max(n NodeID) uint64 {
	m := c.VV.Get(n)
	for _, d := range c.Cloud {
		if d.Node == n && d.Counter > m {
			m = d.Counter
		}
	}
	return m
}

// IsZero reports whether the context holds no dots.
func (c Context) IsZero() bool { return len(c.VV) == 0 && len(c.Cloud) == 0 }

// Add returns the context with dot d included.
func (c Context) Add(d Dot) Context {
	if c.Covers(d) {
		return c
	}
	cloud := make([]Dot, 0, len(c.Cloud)+1)
	cloud = append(cloud, c.Cloud...)
	cloud = append(cloud, d)
	return normalize(c.VV, cloud)
}

// Raise returns the context with every dot of d.Node up to d.Counter
// included.
func (c Context) Raise(d Dot) Context {
	if c.VV.Get(d.Node) >= d.Counter {
		return c
	}
	vv := c.VV.With(d.Node, d.Counter)
	if len(c.Cloud) == 0 {
		return Context{VV: vv}
	}
	return normalize(vv, slices.Clone(c.Cloud))
}

// Compact folds into the vector every cloud dot that seen covers, where seen
// is the holder's applied vector: having merged every delta of a node up to
// seen's counter, whatever its key, the holder has seen every dot of that
// node on this key up to any such cloud dot. Dots are log sequence numbers,
// so a node's dots on one key are far apart and a context that only ever
// added them would keep them all in its cloud.
func (c Context) Compact(seen VersionVector) Context {
	if len(c.Cloud) == 0 || len(seen) == 0 {
		return c
	}
	vv, kept := c.VV, c.Cloud[:0:0]
	for _, d := range c.Cloud {
		if seen.Covers(d) {
			if vv.Get(d.Node) < d.Counter {
				vv = vv.With(d.Node, d.Counter)
			}
			continue
		}
		kept = append(kept, d)
	}
	if len(kept) == len(c.Cloud) {
		return c
	}
	return normalize(vv, kept)
}

// CoveredBy reports whether every dot of the context is at or below vv: a
// replica that has applied every log entry vv covers has seen them all.
func (c Context) CoveredBy(vv VersionVector) bool {
	for _, e := range c.VV {
		if vv.Get(e.Node) < e.Counter {
			return false
		}
	}
	for _, d := range c.Cloud {
		if !vv.Covers(d) {
			return false
		}
	}
	return true
}

// MergeContext returns the union of a and b.
func MergeContext(a, b Context) Context {
	if b.IsZero() {
		return a
	}
	if a.IsZero() {
		return b
	}
	vv := MergeVV(a.VV, b.VV)
	if len(a.Cloud) == 0 && len(b.Cloud) == 0 {
		return Context{VV: vv}
	}
	cloud := make([]Dot, 0, len(a.Cloud)+len(b.Cloud))
	cloud = append(cloud, a.Cloud...)
	cloud = append(cloud, b.Cloud...)
	return normalize(vv, cloud)
}

// Equal reports whether both contexts hold the same dots (both normalized).
func (c Context) Equal(o Context) bool {
	return c.VV.Equal(o.VV) && slices.Equal(c.Cloud, o.Cloud)
}

// normalize sorts the cloud, drops dots the vector covers, and folds dots that
// extend the vector contiguously into it. It owns cloud.
func normalize(vv VersionVector, cloud []Dot) Context {
	slices.SortFunc(cloud, compareDots)
	cloud = slices.Compact(cloud)
	out := cloud[:0]
	for _, d := range cloud {
		have := vv.Get(d.Node)
		switch {
		case d.Counter <= have:
			continue
		case d.Counter == have+1:
			vv = vv.With(d.Node, d.Counter) // copies: vv may be shared
			// Sorted order means this node's next cloud dots come next and
			// may now be adjacent too.
		default:
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return Context{VV: vv, Cloud: out}
}

func itoa(u uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return string(b[i:])
}
