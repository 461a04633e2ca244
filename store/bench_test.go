package store

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	benchKeys        = 100_000
	benchGoroutines  = 50
	benchValueLength = 100
)

func benchStore(b *testing.B, syncWrites bool) *Store {
	b.Helper()
	cfg := Config{Dir: b.TempDir(), SyncWrites: syncWrites, PurgeInterval: time.Hour}
	return openStore(b, cfg, systemClock{})
}

func benchKey(i uint64) []byte { return fmt.Appendf(nil, "key:%012d", i%benchKeys) }

// runParallel runs body from benchGoroutines goroutines and reports
// operations per second (ops per call times b.N).
func runParallel(b *testing.B, opsPerCall int, body func(next func() uint64)) {
	b.SetParallelism((benchGoroutines + 1) / 2) // GOMAXPROCS is 2 here
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		next := func() uint64 { return seq.Add(7919) } // spread over the keys
		for pb.Next() {
			body(next)
		}
	})
	reportRates(b, b.N*opsPerCall, start, cpu, "writes/s")
}

// reportRates reports n operations per second of wall time, and the CPU time
// (all goroutines, Badger's included) per operation: other processes on a
// shared machine distort the first, much less the second.
func reportRates(b *testing.B, n int, start time.Time, cpu time.Duration, unit string) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), unit)
	b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkApplySetParallel(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueLength)
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s := benchStore(b, sync)
			runParallel(b, 1, func(next func() uint64) {
				if r := s.Apply(context.Background(), Write{Op: OpSet, Key: benchKey(next()), Value: value}); r.Err != nil {
					b.Fatal(r.Err)
				}
			})
		})
	}
}

func BenchmarkApplyBatch16(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueLength)
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s := benchStore(b, sync)
			runParallel(b, 16, func(next func() uint64) {
				var ws [16]Write
				var out [16]Result
				for i := range ws {
					ws[i] = Write{Op: OpSet, Key: benchKey(next()), Value: value}
				}
				s.ApplyBatch(context.Background(), ws[:], out[:])
				for _, r := range out {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			})
		})
	}
}

// BenchmarkApplyDelSet deletes a key and writes it again: the writes that
// move records into and out of the dead-record index.
func BenchmarkApplyDelSet(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueLength)
	s := benchStore(b, false)
	runParallel(b, 2, func(next func() uint64) {
		key := benchKey(next())
		if r := s.Apply(context.Background(), Write{Op: OpDel, Key: key}); r.Err != nil {
			b.Fatal(r.Err)
		}
		if r := s.Apply(context.Background(), Write{Op: OpSet, Key: key, Value: value}); r.Err != nil {
			b.Fatal(r.Err)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	s := benchStore(b, false)
	value := bytes.Repeat([]byte("v"), benchValueLength)
	ws := make([]Write, 256)
	out := make([]Result, len(ws))
	for i := 0; i < benchKeys; i += len(ws) {
		for j := range ws {
			ws[j] = Write{Op: OpSet, Key: benchKey(uint64(i + j)), Value: value}
		}
		s.ApplyBatch(context.Background(), ws, out)
	}
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(uint64(i))
	}
	b.SetParallelism((benchGoroutines + 1) / 2)
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Read(keys[seq.Add(7919)%benchKeys]); err != nil {
				b.Fatal(err)
			}
		}
	})
	reportRates(b, b.N, start, cpu, "reads/s")
}
