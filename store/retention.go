package store

import (
	"slices"
	"sync"

	"github.com/upu/upu/crdt"
)

// Log retention by holders. A holder is a reader that needs the log until
// it has shipped it (the ring, the relay to a parent domain). An origin's
// log is trimmed once it passes MaxLogEntries, down to a little below it,
// as when no holder is registered; what every holder has acknowledged goes
// freely, and what some holder still holds is trimmed anyway and counted
// (Stats.LogForcedTrims): whoever needed it repairs by digest sync. Below
// the bound nothing is trimmed, acknowledged or not: a member that falls
// behind catches up from the log rather than by a digest sync, and a write
// does not soon cost the store a second one to delete its entry (trimming
// each acknowledged chunk at once measured slower in redis-benchmark at
// pipeline 16, SET and GET, run beside this policy).
//
// Acknowledgements live in memory: after a restart only MaxLogEntries trims
// until the holders, registered again, acknowledge again.

// Holder is one registered holder of the log (Store.Holder).
type Holder struct {
	s    *Store
	name string
	ack  crdt.VersionVector // guarded by s.holders.mu
}

type holders struct {
	mu   sync.Mutex
	list []*Holder
}

// Holder registers a holder of the log, named for the logs. Until its first
// Ack it holds every entry (up to MaxLogEntries).
func (s *Store) Holder(name string) *Holder {
	h := &Holder{s: s, name: name}
	s.holders.mu.Lock()
	s.holders.list = append(s.holders.list, h)
	s.holders.mu.Unlock()
	return h
}

// Ack says that the holder has every entry up to vv[o] of each origin o and
// needs none of them again; an origin vv lacks stays held whole. Each Ack
// replaces the one before, so a holder that learns it needs more again (a
// new ring member) may acknowledge less. vv is copied.
func (h *Holder) Ack(vv crdt.VersionVector) {
	hs := &h.s.holders
	hs.mu.Lock()
	advanced := !h.ack.Descends(vv) // it acknowledges something new
	h.ack = slices.Clone(vv)
	hs.mu.Unlock()
	if advanced {
		h.s.kickTrim()
	}
}

// Release unregisters the holder: trimming no longer waits for it. It is
// idempotent.
func (h *Holder) Release() {
	hs := &h.s.holders
	hs.mu.Lock()
	n := len(hs.list)
	hs.list = slices.DeleteFunc(hs.list, func(g *Holder) bool { return g == h })
	released := len(hs.list) != n
	hs.mu.Unlock()
	if released {
		h.s.kickTrim()
	}
}

// retention is a snapshot of the holders' acknowledgements, taken for one
// trim request.
type retention struct {
	held bool // some holder is registered
	acks []crdt.VersionVector
}

func (hs *holders) snapshot() retention {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	r := retention{held: len(hs.list) > 0, acks: make([]crdt.VersionVector, len(hs.list))}
	for i, h := range hs.list {
		r.acks[i] = h.ack // replaced, never modified, by Ack
	}
	return r
}

// floor returns the highest sequence number of origin that every holder
// acknowledged.
func (r *retention) floor(origin crdt.NodeID) uint64 {
	f := uint64(0)
	for i, a := range r.acks {
		if g := a.Get(origin); i == 0 || g < f {
			f = g
		}
	}
	return f
}

// trimPlan returns how many of o's oldest entries are due to be trimmed, and
// how many of those some holder still holds (a forced trim, past
// MaxLogEntries).
func (w *writer) trimPlan(o *originState, r *retention) (due, held int64) {
	if o.logCount <= w.s.cfg.MaxLogEntries {
		return 0, 0
	}
	due = o.logCount - w.s.logLow
	if !r.held {
		return due, 0
	}
	var acked int64
	if f := r.floor(o.node); f >= o.logFirst {
		acked = min(o.logCount, int64(f-o.logFirst+1))
	}
	return due, max(0, due-acked)
}

// trimDue reports whether a trim under r has anything left to do in st.
func (w *writer) trimDue(st *state, r *retention) bool {
	for i := range st.origins {
		if n, _ := w.trimPlan(&st.origins[i], r); n > 0 {
			return true
		}
	}
	return false
}

// kickTrim asks the trimmer for a run without waiting.
func (s *Store) kickTrim() {
	select {
	case s.trimKick <- struct{}{}:
	default:
	}
}

// lagging names the holders whose acknowledgement is behind applied: the
// ones a forced trim may have cut short, for its warning.
func (hs *holders) lagging(applied crdt.VersionVector) []string {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var names []string
	for _, h := range hs.list {
		if !h.ack.Descends(applied) {
			names = append(names, h.name)
		}
	}
	return names
}
