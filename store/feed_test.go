package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

// Many readers follow the log, each from its own cursor; one never reads,
// and the writer goes on regardless.
func TestFeedManyReaders(t *testing.T) {
	const (
		readers = 4
		n       = 300
	)
	peerID := crdt.NodeID(0xbeef)
	for _, tc := range []struct {
		name   string
		origin func(s *Store) crdt.NodeID
		write  func(t *testing.T, s *Store, i int)
	}{
		{"local writes", (*Store).NodeID, func(t *testing.T, s *Store, i int) { set(t, s, fmt.Sprint("k", i), "v", 0) }},
		{"peer entries", func(*Store) crdt.NodeID { return peerID }, func(t *testing.T, s *Store, i int) {
			if _, err := s.ApplyRemote(context.Background(), remoteSets(peerID, uint64(i+1), uint64(i+1))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openMem(t)
			origin := tc.origin(s)
			slow := s.Follow()
			t.Cleanup(slow.Close)
			closed := s.Follow()
			closed.Close()
			closed.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			var wg sync.WaitGroup
			got := make([]uint64, readers)
			for r := range readers {
				f := s.Follow()
				t.Cleanup(f.Close)
				wg.Add(1)
				go func() {
					defer wg.Done()
					var cursor uint64
					for cursor < n {
						select {
						case <-f.C():
						case <-ctx.Done():
							return
						}
						for {
							es, err := s.ReadLog(origin, cursor+1, 50)
							if err != nil {
								t.Error(err)
								return
							}
							if len(es) == 0 {
								break
							}
							for _, e := range es {
								if e.Seq != cursor+1 {
									t.Errorf("reader %d: entry %d after %d", r, e.Seq, cursor)
									return
								}
								cursor = e.Seq
							}
						}
					}
					got[r] = cursor
				}()
			}
			for i := range n {
				tc.write(t, s, i)
			}
			wg.Wait()
			for r, c := range got {
				if c != n {
					t.Errorf("reader %d read up to %d, want %d", r, c, n)
				}
			}
			if len(slow.C()) != 1 {
				t.Errorf("the reader that never read has %d wake-ups pending, want 1", len(slow.C()))
			}
			if len(closed.C()) != 0 {
				t.Errorf("a closed feed was woken")
			}
			if es, err := s.ReadLog(origin, 1, 2*n); err != nil || len(es) != n {
				t.Errorf("the slow reader's read from its cursor: %d entries, %v; want %d", len(es), err, n)
			}
		})
	}
}
