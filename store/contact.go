package store

import (
	"context"
	"time"
)

// LastContact returns the time SetLastContact last recorded, in whole
// milliseconds; zero when never. It survives restarts, so that replication
// can tell that this node was out of contact longer than the tombstone
// horizon.
func (s *Store) LastContact() time.Time {
	ms := s.lastContact.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// SetLastContact records t (zero: never) as the last contact with the
// domain, durably as the store's other writes are (Config.SyncWrites).
func (s *Store) SetLastContact(ctx context.Context, t time.Time) error {
	var ms int64
	if !t.IsZero() {
		ms = t.UnixMilli()
	}
	r := s.getRequest(reqContact)
	r.contactMS = ms
	if err := s.do(ctx, r); err != nil {
		return err
	}
	err := r.err
	s.putRequest(r)
	return err
}
