package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/client"
)

// crashCyclesEnv overrides how many kill -9 cycles TestCrashLoop runs.
const crashCyclesEnv = "UPU_CRASH_CYCLES"

// crashSeedEnv replays TestCrashLoop's random choices (operation mix, value
// sizes, kill times); process timing still differs from run to run.
const crashSeedEnv = "UPU_CRASH_SEED"

const (
	crashWriters      = 8
	crashCounterKey   = "crash:counter"
	crashMinUptime    = 50 * time.Millisecond
	crashMaxUptime    = 300 * time.Millisecond
	crashOpsPerCycle  = 20_000 // per writer: bounds a cycle on a fast machine
	crashSampleOldKey = 500    // old keys re-read each cycle, besides the last cycle's
)

// TestCrashLoop kills a node with SIGKILL under write load again and again
// on the same data directory. After each restart every acknowledged set must
// be there with its value, every acknowledged delete must stay deleted, and
// the counter must lie between the sum of acknowledged increments and that
// sum plus the increments whose answer was lost with the process. The node's
// log must report no corruption and `upu digest` must work.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop: many kill -9 cycles of a real process")
	}
	cycles := 50
	if s := os.Getenv(crashCyclesEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", crashCyclesEnv, s)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", crashSeedEnv, s)
		}
	}
	t.Logf("seed %d (replay the choices with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	h := newCrashHistory()
	start := time.Now()
	for cycle := range cycles {
		n := startNode(t, dir, "127.0.0.1:0")
		h.verify(t, n.addr, cycle, rng, false)
		uptime := crashMinUptime + time.Duration(rng.Int64N(int64(crashMaxUptime-crashMinUptime)))
		h.load(t, n, cycle, uptime, rng.Uint64())
		assertNoDamageInLog(t, n)
	}
	n := startNode(t, dir, "127.0.0.1:0")
	h.verify(t, n.addr, cycles, rng, true)
	if d := mustCLI(t, n.addr, "digest"); len(d) != 64 {
		t.Fatalf("upu digest after the crash loop printed %q", d)
	}
	n.stop()
	assertNoDamageInLog(t, n)
	t.Logf("elapsed %s; sets %d, deletes %d, incrs %d acknowledged; %d operations with lost answers (%d of them found applied); counter %d (unknown incrs applied: %d of %d)",
		time.Since(start).Round(time.Millisecond), h.ackedSets, h.ackedDels, h.ackedIncrs,
		h.unknownOps, h.unknownApplied, h.base, h.unknownIncrApplied, h.unknownIncrTotal)
	// counter_exact: at every restart the counter lay within
	// [acknowledged, acknowledged + increments whose answer was lost].
	t.Logf("cycles=%d acked=%d lost=%d resurrected=%d counter_exact=%t",
		cycles, h.ackedSets+h.ackedDels+h.ackedIncrs, h.lost, h.resurrected, h.counterOK)
	if h.lost != 0 || h.resurrected != 0 || !h.counterOK {
		t.Fatalf("crash loop broke promises: lost=%d resurrected=%d counter_ok=%t (seed %d)", h.lost, h.resurrected, h.counterOK, seed)
	}
}

// keyState is what the history knows of one key.
type keyState uint8

const (
	keyPresent    keyState = iota // an acknowledged set (or a set found applied)
	keyAbsent                     // an acknowledged delete, or a set found not applied
	keyMaybeSet                   // a set whose answer was lost
	keyMaybeDeled                 // a delete of a present key whose answer was lost
)

type keyRecord struct {
	state keyState
	size  int // the value's length; its bytes follow from the key
	cycle int // when the key was last written
}

// crashHistory is every operation's outcome across all cycles.
type crashHistory struct {
	keys map[string]*keyRecord
	live [crashWriters][]string // each writer's keys it may delete

	// The counter's value at the last restart is exact; since then
	// acknowledged increments add ackedSince and those whose answer was lost
	// at most unknownSince.
	base, ackedSince, unknownSince int64
	counterOK                      bool

	ackedSets, ackedDels, ackedIncrs int
	unknownOps, unknownApplied       int
	unknownIncrTotal                 int64
	unknownIncrApplied               int64
	lost, resurrected                int
	reported                         int // problems printed, up to crashMaxReported
}

// crashMaxReported bounds the problems printed one by one: a broken store
// would otherwise print a line for each of thousands of keys.
const crashMaxReported = 20

func (h *crashHistory) errorf(t *testing.T, format string, args ...any) {
	t.Helper()
	if h.reported++; h.reported <= crashMaxReported {
		t.Errorf(format, args...)
	}
}

func newCrashHistory() *crashHistory {
	return &crashHistory{keys: make(map[string]*keyRecord), counterOK: true}
}

// crashOp is one operation a writer attempted and what came of it.
type crashOp struct {
	kind  byte // 's' set, 'd' delete, 'i' incr
	key   string
	size  int
	acked bool
}

// crashValue is the value written under key: its length is chosen per write,
// its bytes follow from the key so the history need not keep them.
func crashValue(key string, size int) []byte {
	v := make([]byte, 0, size)
	for len(v) < size {
		v = append(v, key...)
		v = append(v, '|')
	}
	return v[:size]
}

// crashValueSize mostly writes small values, some large enough to fill
// memtables quickly (so flushes happen under the knife) and now and then a
// value big enough for Badger's value log.
func crashValueSize(rng *rand.Rand) int {
	switch r := rng.IntN(1000); {
	case r < 3:
		return 1 << 20
	case r < 40:
		return 16<<10 + rng.IntN(16<<10)
	default:
		return 20 + rng.IntN(200)
	}
}

// load runs the writers against n, kills n after uptime and folds every
// writer's operations into the history.
func (h *crashHistory) load(t *testing.T, n *node, cycle int, uptime time.Duration, seed uint64) {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{n.addr}
	cfg.RequestTimeout = 5 * time.Second
	cfg.MaxBackoff = 100 * time.Millisecond
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		ops  [crashWriters][]crashOp
	)
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops[w] = h.write(cl, w, cycle, &stop, rand.New(rand.NewPCG(seed, uint64(w))))
		}()
	}
	time.Sleep(uptime) // the crash comes at a random moment of the load
	stop.Store(true)
	n.kill()
	wg.Wait()
	for w := range crashWriters {
		h.record(w, cycle, ops[w])
	}
}

// write is one writer's loop: sets of new keys, increments of the shared
// counter and deletes of its own acknowledged keys, until stop.
func (h *crashHistory) write(cl *client.Client, w, cycle int, stop *atomic.Bool, rng *rand.Rand) []crashOp {
	live := h.live[w] // read only here; record updates it afterwards
	var ops []crashOp
	deleted := make(map[int]bool)
	for i := 0; i < crashOpsPerCycle && !stop.Load(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var op crashOp
		switch r := rng.IntN(100); {
		case r < 25:
			op = crashOp{kind: 'i', key: crashCounterKey}
			_, err := cl.Incr(ctx, []byte(crashCounterKey), 1)
			op.acked = err == nil
		case r < 40 && len(live) > len(deleted):
			j := rng.IntN(len(live))
			for deleted[j] {
				j = (j + 1) % len(live)
			}
			deleted[j] = true
			op = crashOp{kind: 'd', key: live[j]}
			op.acked = cl.Del(ctx, []byte(op.key)) == nil
		default:
			op = crashOp{kind: 's', key: fmt.Sprintf("c%03d/w%d/%06d", cycle, w, i), size: crashValueSize(rng)}
			_, err := cl.Set(ctx, []byte(op.key), crashValue(op.key, op.size))
			op.acked = err == nil
		}
		cancel()
		ops = append(ops, op)
	}
	return ops
}

// record folds one writer's operations into the history.
func (h *crashHistory) record(w, cycle int, ops []crashOp) {
	deleted := make(map[string]bool)
	for _, op := range ops {
		if !op.acked {
			h.unknownOps++
		}
		switch op.kind {
		case 'i':
			if op.acked {
				h.ackedIncrs++
				h.ackedSince++
			} else {
				h.unknownSince++
				h.unknownIncrTotal++
			}
		case 's':
			st := keyMaybeSet
			if op.acked {
				h.ackedSets++
				st = keyPresent
				h.live[w] = append(h.live[w], op.key)
			}
			h.keys[op.key] = &keyRecord{state: st, size: op.size, cycle: cycle}
		case 'd':
			deleted[op.key] = true
			k := h.keys[op.key]
			k.cycle = cycle
			k.state = keyMaybeDeled
			if op.acked {
				h.ackedDels++
				k.state = keyAbsent
			}
		}
	}
	live := h.live[w][:0]
	for _, k := range h.live[w] {
		if !deleted[k] {
			live = append(live, k)
		}
	}
	h.live[w] = live
}

// verify reads, on a freshly restarted node, every key written in the
// cycle before plus a sample of older ones (all of them when full), and
// the counter. Keys whose last answer was lost are settled by what is
// found: the process that might have applied them is gone.
func (h *crashHistory) verify(t *testing.T, addr string, cycle int, rng *rand.Rand, full bool) {
	t.Helper()
	var check []string
	var old []string
	for k, r := range h.keys {
		if full || r.cycle == cycle-1 {
			check = append(check, k)
		} else {
			old = append(old, k)
		}
	}
	for i := 0; i < crashSampleOldKey && len(old) > 0; i++ {
		j := rng.IntN(len(old))
		check = append(check, old[j])
		old[j] = old[len(old)-1]
		old = old[:len(old)-1]
	}

	cfg := client.DefaultConfig()
	cfg.Nodes = []string{addr}
	cfg.RequestTimeout = 10 * time.Second
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	results := readKeys(cl, check, 15*time.Second)

	for i, k := range check {
		r, f := h.keys[k], results[i]
		if f.err != nil {
			t.Fatalf("cycle %d: get %s: %v", cycle, k, f.err)
		}
		if f.present && !bytes.Equal(f.value, crashValue(k, r.size)) {
			h.errorf(t, "cycle %d: %s holds %d bytes %.40q, want its %d-byte value", cycle, k, len(f.value), f.value, r.size)
			h.lost++
			continue
		}
		switch r.state {
		case keyPresent:
			if !f.present {
				h.errorf(t, "cycle %d: acknowledged set of %s (cycle %d) lost", cycle, k, r.cycle)
				h.lost++
			}
		case keyAbsent:
			if f.present {
				h.errorf(t, "cycle %d: deleted key %s (cycle %d) is back", cycle, k, r.cycle)
				h.resurrected++
			}
		case keyMaybeSet, keyMaybeDeled:
			if (r.state == keyMaybeSet) == f.present {
				h.unknownApplied++
			}
			r.state = keyAbsent
			if f.present {
				r.state = keyPresent
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var v int64
	switch it, err := cl.Get(ctx, []byte(crashCounterKey)); {
	case errors.Is(err, client.ErrNotFound):
	case err != nil:
		t.Fatalf("cycle %d: get counter: %v", cycle, err)
	default:
		if v, err = strconv.ParseInt(string(it.Value), 10, 64); err != nil {
			t.Fatalf("cycle %d: counter value %q: %v", cycle, it.Value, err)
		}
	}
	lo, hi := h.base+h.ackedSince, h.base+h.ackedSince+h.unknownSince
	if v < lo || v > hi {
		h.errorf(t, "cycle %d: counter %d, want within [%d, %d] (%d acknowledged and %d unanswered increments since it was %d)",
			cycle, v, lo, hi, h.ackedSince, h.unknownSince, h.base)
		h.counterOK = false
		if v < lo {
			h.lost++
		}
	} else {
		h.unknownIncrApplied += v - lo
	}
	h.base, h.ackedSince, h.unknownSince = v, 0, 0
}
