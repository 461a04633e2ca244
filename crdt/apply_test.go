package crdt

import "testing"

// TestApply: how a replica merges what arrives into a key's record.
func TestApply(t *testing.T) {
	applied := vv(nA, 9, nB, 4)
	old := rec(ctxOf(vv(nA, 3)), val(nA, 3, 10, "x"))
	tests := []struct {
		name      string
		old       Record
		in        Incoming
		want      Record
		needsSeen bool // whether the merge must ask for the applied vector
	}{
		{
			name: "a delta of its own dot merges plainly",
			old:  old,
			in:   Incoming{Record: rec(ctxOf(vv(nA, 3), Dot{nB, 5}), val(nB, 5, 11, "y")), Origin: nB, Seq: 5},
			want: rec(ctxOf(vv(nA, 3, nB, 5)), val(nB, 5, 11, "y")),
			// The cloud dot B:5 folds into the vector as the entry applied.
			needsSeen: true,
		},
		{
			name: "a delta of its own dot and no cloud asks for nothing",
			old:  Record{},
			in:   Incoming{Record: rec(ctxOf(vv(nB, 5)), val(nB, 5, 11, "y")), Origin: nB, Seq: 5},
			want: rec(ctxOf(vv(nB, 5)), val(nB, 5, 11, "y")),
		},
		{
			name: "an older dot in a delta stays dropped where applied covers it",
			old:  rec(ctxOf(vv(nA, 3))),
			in:   Incoming{Record: rec(ctxOf(vv(nB, 6)), Entry{Dot: Dot{nB, 2}, TS: 5, Kind: KindBase, Inc: 7}, count(nB, 6, 12, 1, 0)), Origin: nB, Seq: 6},
			want: rec(ctxOf(vv(nA, 3, nB, 6)), count(nB, 6, 12, 1, 0)),
			// B:2 is under the applied vector and the record no longer holds
			// it: its tombstone was dropped.
			needsSeen: true,
		},
		{
			name: "a whole record merges with both seen vectors",
			old:  old,
			in:   Incoming{Record: rec(ctxOf(vv(nB, 2)), val(nB, 2, 9, "stale")), Seen: vv(nB, 2)},
			want: rec(ctxOf(vv(nA, 3, nB, 2)), val(nA, 3, 10, "x")),
			// B:2 is under this replica's applied vector and not held here.
			needsSeen: true,
		},
		{
			name: "resets arrive with the delta",
			old:  rec(ctxOf(vv(nA, 3)), count(nA, 3, 10, 100, 0)),
			in: Incoming{Record: Record{Entries: []Entry{tomb(nB, 5, 11)}, Context: ctxOf(vv(nA, 3, nB, 5)),
				Resets: []Reset{{Node: nA, Inc: 100}}}, Origin: nB, Seq: 5},
			want: Record{Entries: []Entry{tomb(nB, 5, 11)}, Context: ctxOf(vv(nA, 3, nB, 5)), Resets: []Reset{{Node: nA, Inc: 100}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			got := Apply(tt.old, tt.in, func() VersionVector { asked = true; return applied })
			if !recordsEqual(got, tt.want) {
				t.Fatalf("Apply = %s, want %s", fmtRecord(got), fmtRecord(tt.want))
			}
			if asked != tt.needsSeen {
				t.Fatalf("asked for the applied vector: %v, want %v", asked, tt.needsSeen)
			}
		})
	}
}

// TestCollectable: a dead record goes at stability unless it holds resets,
// which wait for the horizon.
func TestCollectable(t *testing.T) {
	stable := vv(nA, 9, nB, 9)
	dead := rec(ctxOf(vv(nA, 3)), tomb(nA, 3, 10))
	withResets := dead
	withResets.Resets = []Reset{{Node: nB, Origin: 1, Inc: 100}}
	tests := []struct {
		name        string
		r           Record
		collectable bool
		pastHorizon bool // at 10 ms past the last write, with a horizon of 5 ms
	}{
		{"a tombstone", dead, true, true},
		{"a tombstone with resets", withResets, false, true},
		{"a tombstone beyond stability", rec(ctxOf(vv(nA, 10)), tomb(nA, 10, 10)), false, true},
		{"a live value", rec(ctxOf(vv(nA, 3)), val(nA, 3, 10, "x")), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.r.LastWrite().Millis() + 10
			if got := tt.r.Collectable(now, stable); got != tt.collectable {
				t.Errorf("Collectable = %v, want %v", got, tt.collectable)
			}
			if got := tt.r.PastHorizon(now, 5); got != tt.pastHorizon {
				t.Errorf("PastHorizon = %v, want %v", got, tt.pastHorizon)
			}
		})
	}
}
