package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

func cacheRec(n int) crdt.Record {
	return crdt.Record{Entries: []crdt.Entry{{Value: make([]byte, n)}}}
}

func TestRecordCacheBounds(t *testing.T) {
	const limit = 1 << 20
	c := newRecordCache(limit)
	c.put("a", cacheRec(100), deadUnknown)
	c.put("b", cacheRec(100), deadNo)
	if _, ok := c.get([]byte("a")); !ok {
		t.Fatal("a missing")
	}
	c.put("a", cacheRec(200), deadYes) // replaced, not counted twice
	if c.deadMark([]byte("a")) != deadYes || c.deadMark([]byte("b")) != deadNo || c.deadMark([]byte("c")) != deadUnknown {
		t.Error("dead marks not kept")
	}
	if got, _ := c.usage(); got != recordSize("a", cacheRec(200))+recordSize("b", cacheRec(100)) {
		t.Errorf("usage = %d, want the two records' sizes", got)
	}
	c.put("huge", cacheRec(int(c.shardLimit)), deadNo) // over a shard's share/16: not cached
	if _, ok := c.get([]byte("huge")); ok {
		t.Error("huge record cached")
	}
	for i := range 5000 {
		c.put(strconv.Itoa(i), cacheRec(100), deadNo)
		if got, _ := c.usage(); got > limit {
			t.Fatalf("usage %d over limit %d after %d puts", got, limit, i)
		}
	}
	for i := range c.shards {
		sh := &c.shards[i]
		var sum int64
		for _, e := range sh.m {
			sum += e.size
		}
		if sum != sh.size {
			t.Errorf("shard %d: size %d, entries sum to %d", i, sh.size, sum)
		}
	}
	if _, n := c.usage(); n == 0 {
		t.Error("cache empty after 5000 puts")
	}
}

func TestRecordCacheMissing(t *testing.T) {
	c := newRecordCache(1 << 20)
	_, _, known, gen := c.lookup([]byte("k"))
	if known {
		t.Fatal("an empty cache knows k")
	}
	c.fill([]byte("k"), crdt.Record{}, false, gen)
	if _, found, known, _ := c.lookup([]byte("k")); !known || found {
		t.Fatalf("after a miss is filled: known %v found %v, want known, not found", known, found)
	}
	c.put("k", cacheRec(3), deadNo)
	if _, found, _, _ := c.lookup([]byte("k")); !found {
		t.Fatal("a put does not replace the missing mark")
	}
	c.remove("k")
	if _, found, known, _ := c.lookup([]byte("k")); !known || found {
		t.Fatalf("after remove: known %v found %v, want known, not found", known, found)
	}
}

// A reader's fill from a snapshot older than a commit must not replace
// what the writer put after that commit.
func TestRecordCacheStaleFill(t *testing.T) {
	tests := []struct {
		name  string
		write func(c *recordCache)
	}{
		{"put", func(c *recordCache) { c.put("k", cacheRec(2), deadNo) }},
		{"remove", func(c *recordCache) { c.remove("k") }},
		{"other key of the shard", func(c *recordCache) {
			// Any writer change to the shard voids the fill: cheaper than
			// a generation per key, and only costs a later miss.
			for i := 0; ; i++ {
				k := "o" + strconv.Itoa(i)
				if c.shard([]byte(k)) == c.shard([]byte("k")) {
					c.put(k, cacheRec(1), deadNo)
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRecordCache(1 << 20)
			_, _, _, gen := c.lookup([]byte("k"))
			tt.write(c)
			c.fill([]byte("k"), cacheRec(1), true, gen) // read before the write
			rec, found, known, _ := c.lookup([]byte("k"))
			if found && len(rec.Entries[0].Value) == 1 {
				t.Fatalf("stale fill replaced the writer's change (known %v)", known)
			}
		})
	}
}

// Readers racing the writer on the same keys never see a value older than
// one already acknowledged, whether the cache or Badger answers, and with
// a cache small enough that keys keep being evicted and filled again.
func TestCacheReadsFollowWrites(t *testing.T) {
	cfg := testConfig()
	cfg.RecordCacheSize = 256 << 10
	s := openStore(t, cfg, newFakeClock())
	const keys, rounds = 1500, 6
	var acked [keys]struct {
		sync.Mutex
		v int
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i*7 + r) % keys
				acked[k].Lock()
				floor := acked[k].v
				acked[k].Unlock()
				v, _, err := s.Read([]byte(fmt.Sprint("k", k)))
				if err != nil && floor > 0 {
					errs <- fmt.Errorf("k%d: %v after %d was acknowledged", k, err, floor)
					return
				}
				if err == nil {
					if got, _ := strconv.Atoi(string(v.Value)); got < floor {
						errs <- fmt.Errorf("k%d: read %d after %d was acknowledged", k, got, floor)
						return
					}
				}
			}
		}()
	}
	// Small batches: each commit is a chance for a reader's stale fill.
	const batch = 4
	ws, out := make([]Write, batch), make([]Result, batch)
	for n := 1; n <= rounds && ctx.Err() == nil; n++ {
		for first := 0; first < keys; first += batch {
			for i := range batch {
				ws[i] = Write{Op: OpSet, Key: []byte(fmt.Sprint("k", first+i)), Value: []byte(strconv.Itoa(n))}
			}
			s.ApplyBatch(ctx, ws, out)
			for i := range batch {
				if out[i].Err != nil {
					t.Fatal(out[i].Err)
				}
				acked[first+i].Lock()
				acked[first+i].v = n
				acked[first+i].Unlock()
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
