package store

import (
	"context"
	"fmt"

	"github.com/upu/upu/crdt"
)

// RaiseApplied raises applied[o] to vv[o] for every origin o other than this
// node where vv[o] is higher, and drops o's log: it then begins after vv[o].
// The caller has merged records covering every delta up to vv first (a
// snapshot stream); entries up to vv[o] that arrive later are duplicates.
//
// A long log is dropped in chunks, each its own transaction, from the front:
// a reader sees o's log shrink from the front and then, with the last chunk,
// applied[o] jump in the same transaction that empties the log. The log is
// never left with a hole, whether RaiseApplied is interrupted or not, and
// an interrupted one leaves a consistent state (the caller sends the
// snapshot again).
func (s *Store) RaiseApplied(ctx context.Context, vv crdt.VersionVector) error {
	for s.behind(vv) {
		r := s.getRequest(reqRaise)
		r.vv = vv
		if err := s.do(ctx, r); err != nil {
			return err
		}
		progress, err := r.committed, r.err
		s.putRequest(r)
		if err != nil {
			return fmt.Errorf("store: raise applied to %s: %w", vv, err)
		}
		if progress == 0 {
			// The writer found nothing to raise: applied caught up
			// meanwhile (it publishes before answering).
			return nil
		}
	}
	return nil
}

// behind reports whether vv is ahead of the applied vector for some origin
// other than this node.
func (s *Store) behind(vv crdt.VersionVector) bool {
	applied := s.Applied()
	for _, e := range vv {
		if e.Node != s.self && e.Counter > applied.Get(e.Node) {
			return true
		}
	}
	return false
}

// stageRaise stages one chunk of RaiseApplied for every origin still below
// the request's vector.
func (w *writer) stageRaise(r *request) {
	for i, e := range r.vv {
		if e.Node != w.s.self && e.Counter > w.pending.applied(e.Node) {
			w.stage(opRef{req: r, i: i})
		}
	}
}

// buildRaise deletes up to a chunk of e.Node's log from the front; when that
// empties it, the same operation raises applied[e.Node] to e.Counter.
func (w *writer) buildRaise(e crdt.VVEntry) effect {
	origin := e.Node
	o := w.pending.origin(origin)
	n := min(o.logCount, w.trimChunk)
	for seq := o.logFirst; seq < o.logFirst+uint64(n); seq++ {
		start := len(w.arena)
		w.arena = appendLogKey(w.arena, origin, seq)
		w.items = append(w.items, item{key: w.since(start), del: true})
	}
	eff := effect{origin: origin, trimN: n}
	if n == o.logCount {
		eff.raise = e.Counter
		w.touchOrigin(origin)
	}
	return eff
}
