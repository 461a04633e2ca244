package store

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Feed is one reader's wake-up for new log entries (Follow). The reader
// keeps its own cursor, a version vector of what it has read, and reads
// on with ReadLog when C fires; a wake-up only says that Applied moved
// since the last one was taken.
type Feed struct {
	s *Store
	c chan struct{}
}

// feeds is the set of open Feeds. The writer reads it on every commit that
// grows the log, so it is copied on change and read without a lock.
type feeds struct {
	mu   sync.Mutex // serialises changes
	list atomic.Pointer[[]*Feed]
}

// Follow returns a new Feed. Its channel fires after every commit that added
// log entries (local writes or peers') or raised the applied vector; wake-ups
// coalesce, so the writer never waits for a slow reader. Close the Feed when
// done with it.
func (s *Store) Follow() *Feed {
	f := &Feed{s: s, c: make(chan struct{}, 1)}
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	var list []*Feed
	if p := s.feeds.list.Load(); p != nil {
		list = slices.Clone(*p)
	}
	list = append(list, f)
	s.feeds.list.Store(&list)
	return f
}

// C returns the wake-up channel (capacity 1). It is never closed: a reader
// stops on its own signal, not on the feed's.
func (f *Feed) C() <-chan struct{} { return f.c }

// Close stops the wake-ups. It is idempotent.
func (f *Feed) Close() {
	fs := &f.s.feeds
	fs.mu.Lock()
	defer fs.mu.Unlock()
	p := fs.list.Load()
	if p == nil || !slices.Contains(*p, f) {
		return
	}
	list := slices.DeleteFunc(slices.Clone(*p), func(g *Feed) bool { return g == f })
	fs.list.Store(&list)
}

// wake signals every open Feed without blocking.
func (fs *feeds) wake() {
	p := fs.list.Load()
	if p == nil {
		return
	}
	for _, f := range *p {
		select {
		case f.c <- struct{}{}:
		default:
		}
	}
}
