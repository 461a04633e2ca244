package crdt

// Incoming is what a replica merges into one key's record: the delta of a
// log entry (Origin, Seq), its own or a peer's, or, with Seq 0, a whole
// record from a digest sync, made by a replica whose applied vector was
// Seen.
type Incoming struct {
	Record Record
	Origin NodeID
	Seq    uint64
	Seen   VersionVector
}

// Apply is a replica's one merge rule: it returns old, the key's record on
// a replica that has applied what applied returns (the entry being merged
// not included), merged with in, its context's cloud compacted (see
// Context.Compact) as far as the replica has applied, counting in.
//
// A delta whose entries all carry its own dot merges plainly. One that
// carries older dots too (a register value converted to a counter's base, a
// counter's expiry rewritten in place) merges with applied as the record's
// seen vector: should the key's tombstone have been dropped already (at the
// horizon), an old dot it covered cannot come back through the delta. A
// whole record merges with both replicas' seen vectors (MergeSeen).
//
// applied is called only when the merge needs it, so a caller that builds
// the vector pays for it only then.
func Apply(old Record, in Incoming, applied func() VersionVector) Record {
	if in.Seq == 0 {
		seen := applied()
		r := MergeSeen(old, seen, in.Record, in.Seen)
		if len(r.Context.Cloud) != 0 {
			r.Context = r.Context.Compact(seen)
		}
		return r
	}
	var r Record
	if ownDots(in) {
		r = Merge(old, in.Record)
	} else {
		r = MergeSeen(old, applied(), in.Record, nil)
	}
	if len(r.Context.Cloud) != 0 {
		seen := applied()
		if in.Seq > seen.Get(in.Origin) {
			seen = seen.With(in.Origin, in.Seq)
		}
		r.Context = r.Context.Compact(seen)
	}
	return r
}

// ownDots reports whether every entry of a delta carries its own dot.
func ownDots(in Incoming) bool {
	own := Dot{Node: in.Origin, Counter: in.Seq}
	for i := range in.Record.Entries {
		if in.Record.Entries[i].Dot != own {
			return false
		}
	}
	return true
}

// Collectable reports whether a replica may drop r, its key's record, at
// nowMS, once every member has applied what stable covers: nothing in it
// is visible and nothing it supersedes can still arrive. A record with
// resets waits for the tombstone horizon (PastHorizon) instead: a count
// entry made concurrently with the write that reset it may still be on its
// way, and only the reset keeps what that write observed removed.
func (r Record) Collectable(nowMS int64, stable VersionVector) bool {
	return len(r.Resets) == 0 && r.Dead(nowMS) && r.Context.CoveredBy(stable)
}

// PastHorizon reports whether r is dead at nowMS and its last write is at
// least horizonMS old: the fallback past which a replica drops it whether
// or not stability is known.
func (r Record) PastHorizon(nowMS, horizonMS int64) bool {
	return r.Dead(nowMS) && nowMS >= r.LastWrite().Millis()+horizonMS
}
