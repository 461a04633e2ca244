package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/upu/upu/crdt"
)

// SCAN walks the store in key order. A redis client holds a cursor as an
// unsigned integer (go-redis and redis-cli parse it so), too small for a
// key, so the listener keeps the last key of each recent SCAN call in a
// table and hands out a cursor naming its slot, together with the first
// bytes of the key:
//
//	bits 52-50  how many key bytes follow (1 to 4)
//	bits 49-18  the key's first 4 bytes, zero-padded
//	bits 17-0   the slot's tag
//
// Cursors stay below 2^53, so that clients that parse them as floating
// point numbers (JavaScript) lose nothing. A scan resumes just after the
// exact key when its slot still holds it; when the slot was reused (more
// SCAN calls than the table holds came in between) or the node restarted, it
// resumes at the key's first bytes, which may return some keys again, as
// SCAN allows. Either way a cursor is a position in the key order, so it
// stays valid under writes: every key present for the whole iteration is
// returned.
const (
	cursorTagBits   = 18
	cursorPrefixLen = 4
	cursorMaxTag    = 1<<cursorTagBits - 1
	// scanTableBytes bounds the keys the cursor table holds (its slots
	// times the largest key).
	scanTableBytes = 4 << 20
)

type scanCursors struct {
	mu    sync.Mutex
	last  uint32 // tag of the newest cursor
	slots []scanSlot
}

type scanSlot struct {
	tag uint32
	key []byte
}

func newScanCursors(maxKeySize int) scanCursors {
	return scanCursors{slots: make([]scanSlot, min(4096, max(64, scanTableBytes/max(maxKeySize, 1))))}
}

// save records key as a scan's last key and returns the cursor for it.
func (t *scanCursors) save(key []byte) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = t.last%cursorMaxTag + 1
	s := &t.slots[int(t.last)%len(t.slots)]
	s.tag = t.last
	if cap(s.key) > 2*len(key)+64 {
		s.key = nil // do not keep a long key's buffer for a short one
	}
	s.key = append(s.key[:0], key...)
	return encodeCursor(key, t.last)
}

func encodeCursor(key []byte, tag uint32) uint64 {
	var prefix [cursorPrefixLen]byte
	n := copy(prefix[:], key)
	return uint64(n)<<(8*cursorPrefixLen+cursorTagBits) | uint64(binary.BigEndian.Uint32(prefix[:]))<<cursorTagBits | uint64(tag)
}

// resume returns the key a scan from cursor starts at (inclusive); nil
// means the beginning. ok is false for a number that is no cursor of ours.
func (t *scanCursors) resume(cursor uint64) (start []byte, ok bool) {
	if cursor == 0 {
		return nil, true
	}
	n := int(cursor >> (8*cursorPrefixLen + cursorTagBits))
	if n < 1 || n > cursorPrefixLen {
		return nil, false
	}
	bits := uint32(cursor >> cursorTagBits)
	if bits&(1<<(8*(cursorPrefixLen-n))-1) != 0 {
		return nil, false // padding that is not zero
	}
	var prefix [cursorPrefixLen]byte
	binary.BigEndian.PutUint32(prefix[:], bits)
	tag := uint32(cursor & cursorMaxTag)
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := &t.slots[int(tag)%len(t.slots)]; s.tag == tag && s.key != nil && encodeCursor(s.key, tag) == cursor {
		// Just after the key: the key followed by the smallest byte.
		return append(bytes.Clone(s.key), 0), true
	}
	return bytes.Clone(prefix[:n]), true
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. COUNT
// (default 10) is how many records to examine, dead ones included, as in
// redis, where it is a hint of work rather than of results.
func (c *conn) cmdScan(args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		c.fail(errBadCursor)
		return
	}
	start, ok := c.s.cursors.resume(cursor)
	if !ok {
		c.fail(errBadCursor)
		return
	}
	count := 10
	var pattern []byte
	wantType := true
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.fail(errSyntax)
			return
		}
		switch v := args[i+1]; {
		case is(args[i], "COUNT"):
			n, ok := parseInt(v)
			if !ok {
				c.fail(errNotInt)
				return
			}
			if n < 1 {
				c.fail(errSyntax)
				return
			}
			count = int(min(n, 1<<20))
		case is(args[i], "MATCH"):
			pattern = v
		case is(args[i], "TYPE"):
			wantType = is(v, "string") // the only type there is
		default:
			c.fail(errSyntax)
			return
		}
	}
	// A pattern that starts with literal bytes bounds the walk to the keys
	// that start with them.
	lit := literalPrefix(pattern)
	if bytes.Compare(start, lit) < 0 {
		start = lit
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	var (
		keys [][]byte
		last []byte
		seen int
		done bool
	)
	err = c.batch.Scan(ctx, start, count, func(key []byte, v crdt.View) bool {
		if !bytes.HasPrefix(key, lit) {
			done = true
			return false
		}
		seen++
		last = key
		if wantType && v.Found && (pattern == nil || globMatch(pattern, key)) {
			keys = append(keys, key)
		}
		return true
	})
	if err != nil {
		c.readFail("scan", err)
		return
	}
	next := uint64(0)
	if seen == count && !done {
		next = c.s.cursors.save(last)
	}
	c.wr.AppendArray(2)
	var num [20]byte
	c.wr.AppendBulk(strconv.AppendUint(num[:0], next, 10))
	c.wr.AppendArray(len(keys))
	for _, k := range keys {
		c.wr.AppendBulk(k)
	}
}

// literalPrefix returns the bytes every key matching pattern starts with.
func literalPrefix(pattern []byte) []byte {
	for i, b := range pattern {
		if b == '*' || b == '?' || b == '[' || b == '\\' {
			return pattern[:i]
		}
	}
	return pattern
}

// globMatch reports whether s matches pattern as redis' stringmatchlen
// does: * any run of bytes, ? one byte, [abc] [^abc] [a-z] one byte of a
// class, \x the byte x. It backtracks only to the last star, so it takes
// time proportional to len(pattern) * len(s) at worst.
func globMatch(pattern, s []byte) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) && pattern[p] == '*' {
			for p < len(pattern) && pattern[p] == '*' {
				p++
			}
			if p == len(pattern) {
				return true
			}
			starP, starI = p, i
			continue
		}
		if p < len(pattern) {
			if ok, next := matchOne(pattern, p, s[i]); ok {
				p, i = next, i+1
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches the pattern element at pattern[p] (not a star) against
// the byte b, and returns where the next element starts.
func matchOne(pattern []byte, p int, b byte) (bool, int) {
	switch pattern[p] {
	case '?':
		return true, p + 1
	case '[':
		p++
		not := p < len(pattern) && pattern[p] == '^'
		if not {
			p++
		}
		match := false
		for ; p < len(pattern) && pattern[p] != ']'; p++ {
			switch {
			case pattern[p] == '\\' && p+1 < len(pattern):
				p++
				match = match || pattern[p] == b
			case p+2 < len(pattern) && pattern[p+1] == '-':
				lo, hi := pattern[p], pattern[p+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				match = match || lo <= b && b <= hi
				p += 2
			default:
				match = match || pattern[p] == b
			}
		}
		// An unclosed class runs to the end of the pattern, as in redis.
		return match != not, min(p+1, len(pattern))
	case '\\':
		if p+1 < len(pattern) {
			p++
		}
	}
	return pattern[p] == b, p + 1
}
