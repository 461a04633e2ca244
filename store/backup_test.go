package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

// openDisk opens an on-disk store in a new directory.
func openDisk(t testing.TB, clk Clock) *Store {
	t.Helper()
	return openStore(t, Config{Dir: t.TempDir(), PurgeInterval: time.Hour}, clk)
}

// fillBackupSource writes registers, a counter, a value with an expiry, a
// deleted key and a system record.
func fillBackupSource(t testing.TB, s *Store, clk *fakeClock, n int) {
	t.Helper()
	for i := range n {
		set(t, s, fmt.Sprintf("key-%05d", i), fmt.Sprintf("value-%d", i), 0)
	}
	set(t, s, "expiring", "soon", clk.ms()+60_000)
	set(t, s, "gone", "x", 0)
	ctx := context.Background()
	for _, w := range []Write{
		{Op: OpIncr, Key: []byte("counter"), Delta: 41},
		{Op: OpIncr, Key: []byte("counter"), Delta: 1},
		{Op: OpDel, Key: []byte("gone")},
		{Op: OpSet, Key: []byte("parent"), Value: []byte("top"), System: true},
	} {
		if res := s.Apply(ctx, w); res.Err != nil {
			t.Fatalf("%+v: %v", w, res.Err)
		}
	}
}

func backupOf(t testing.TB, s *Store, domain string) ([]byte, BackupInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := s.Backup(context.Background(), &buf, BackupOptions{Domain: domain})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return buf.Bytes(), info
}

func openRestored(t testing.TB, dir string, clk Clock) *Store {
	t.Helper()
	return openStore(t, Config{Dir: dir, PurgeInterval: time.Hour}, clk)
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		keepNodeID bool
	}{
		{name: "new node ID"},
		{name: "keep node ID", keepNodeID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			src := openDisk(t, clk)
			fillBackupSource(t, src, clk, 500)
			wantDigest, wantKeys, err := src.Digest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			file, info := backupOf(t, src, "eu")
			want := BackupInfo{NodeID: src.NodeID(), Domain: "eu", Digest: wantDigest, Keys: wantKeys, Created: clk.Now(), Size: int64(len(file))}
			if !info.Created.Equal(want.Created) {
				t.Fatalf("Created = %v, want %v", info.Created, want.Created)
			}
			info.Created = want.Created
			if info != want {
				t.Fatalf("Backup info = %+v, want %+v", info, want)
			}

			dir := filepath.Join(t.TempDir(), "restored")
			var lastDone, lastTotal int64
			got, err := Restore(context.Background(), dir, bytes.NewReader(file), RestoreOptions{
				KeepNodeID: tt.keepNodeID,
				Progress:   func(done, total int64) { lastDone, lastTotal = done, total },
			})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got.Backup.Digest != wantDigest || got.Backup.NodeID != src.NodeID() {
				t.Fatalf("Restore = %+v, want the backup's digest %s and node %s", got, wantDigest, src.NodeID())
			}
			if lastDone != int64(len(file)) || lastTotal != int64(len(file)) {
				t.Fatalf("last progress %d of %d, want %d of %d", lastDone, lastTotal, len(file), len(file))
			}
			if sameID := got.NodeID == src.NodeID(); sameID != tt.keepNodeID {
				t.Fatalf("restored node ID %s, source %s: same %v, want %v", got.NodeID, src.NodeID(), sameID, tt.keepNodeID)
			}

			dst := openRestored(t, dir, clk)
			if dst.NodeID() != got.NodeID {
				t.Fatalf("opened store's node ID %s, Restore said %s", dst.NodeID(), got.NodeID)
			}
			digest, keys, err := dst.Digest(context.Background())
			if err != nil || digest != wantDigest || keys != wantKeys {
				t.Fatalf("restored Digest = %s, %d, %v; want %s, %d", digest, keys, err, wantDigest, wantKeys)
			}
			if !dst.Applied().Equal(src.Applied()) {
				t.Fatalf("restored applied %s, source %s", dst.Applied(), src.Applied())
			}
			if dst.LogLen() != src.LogLen() {
				t.Fatalf("restored log holds %d entries, source %d", dst.LogLen(), src.LogLen())
			}
			if v, _, err := dst.ReadSystem([]byte("parent")); err != nil || string(v.Value) != "top" {
				t.Fatalf("restored system record = %q, %v; want top", v.Value, err)
			}
			if v, ok := readValue(t, dst, "counter"); !ok || v != "42" {
				t.Fatalf("restored counter = %q, %v; want 42", v, ok)
			}
			// The restored store goes on writing: its HLC and sequence numbers
			// continue from what it holds.
			set(t, dst, "after", "restore", 0)
			if v, ok := readValue(t, dst, "after"); !ok || v != "restore" {
				t.Fatalf("write after restore: %q, %v", v, ok)
			}
		})
	}
}

// TestBackupIsOneSnapshot backs up while writes go on: the restore's own
// check (the restored digest at the backup's time equals the one stated)
// passes only if the stream and the digest saw the same writes.
func TestBackupIsOneSnapshot(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 2000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			src.Apply(ctx, Write{Op: OpSet, Key: fmt.Appendf(nil, "key-%05d", i%3000), Value: fmt.Appendf(nil, "during-%d", i)})
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range 3 {
		file, info := backupOf(t, src, "")
		got, err := Restore(context.Background(), filepath.Join(t.TempDir(), fmt.Sprint(i)), bytes.NewReader(file), RestoreOptions{})
		if err != nil {
			t.Fatalf("backup %d: Restore: %v", i, err)
		}
		if got.Backup.Digest != info.Digest || got.Backup.Keys != info.Keys {
			t.Fatalf("backup %d: restored %+v, backup said %+v", i, got.Backup, info)
		}
	}
}

func TestRestoreRefusesNonEmptyDir(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 10)
	file, _ := backupOf(t, src, "")
	dir := t.TempDir()
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), dir, bytes.NewReader(file), RestoreOptions{})
	if !errors.Is(err, ErrDirNotEmpty) {
		t.Fatalf("Restore into a non-empty directory: %v, want ErrDirNotEmpty", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Fatalf("directory after a refused restore holds %v, want notes.txt alone", entries)
	}
}

func TestRestoreRefusesBadBackups(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 300)
	file, _ := backupOf(t, src, "")
	headLen := len(backupMagic) + 4 + int(binary.BigEndian.Uint32(file[len(backupMagic):]))

	// withHeader replaces the JSON header, keeping the stream.
	withHeader := func(json string) []byte {
		out := append([]byte(backupMagic), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(out[len(backupMagic):], uint32(len(json)))
		return append(append(out, json...), file[headLen:]...)
	}
	flip := func(at int) []byte {
		out := bytes.Clone(file)
		out[at] ^= 0xFF
		return out
	}

	tests := []struct {
		name string
		file []byte
	}{
		{name: "empty", file: nil},
		{name: "not a backup", file: []byte("hello, this is some other file")},
		{name: "cut in the header", file: file[:headLen-3]},
		{name: "header too long", file: append([]byte(backupMagic), 0xFF, 0xFF, 0xFF, 0xFF)},
		{name: "header not JSON", file: withHeader("{nope")},
		{name: "unknown format", file: withHeader(`{"format":2,"node_id":"0000000000000001","digest":"00","size":999999,"stream_sha256":"00"}`)},
		{name: "no digest", file: withHeader(`{"format":1,"node_id":"0000000000000001","size":999999,"stream_sha256":"00"}`)},
		{name: "stream missing", file: file[:headLen]},
		{name: "cut in the stream", file: file[:headLen+(len(file)-headLen)/2]},
		{name: "cut one byte short", file: file[:len(file)-1]},
		{name: "bytes after the stream", file: append(bytes.Clone(file), 0)},
		{name: "a byte changed mid-stream", file: flip(headLen + (len(file)-headLen)/2)},
		{name: "a byte changed at the end", file: flip(len(file) - 3)},
		{name: "a frame length changed", file: flip(headLen)},
		{name: "a frame length past the end", file: flip(headLen + 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "restored")
			_, err := Restore(context.Background(), dir, bytes.NewReader(tt.file), RestoreOptions{})
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("Restore: %v, want ErrBadBackup", err)
			}
			if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("a failed restore left %s behind (%v)", dir, statErr)
			}
			if _, err := CheckBackup(context.Background(), bytes.NewReader(tt.file), nil); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("CheckBackup: %v, want ErrBadBackup", err)
			}
		})
	}
}

func TestCheckBackup(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 100)
	file, info := backupOf(t, src, "eu")
	var lastDone int64
	got, err := CheckBackup(context.Background(), bytes.NewReader(file), func(done, _ int64) { lastDone = done })
	if err != nil {
		t.Fatalf("CheckBackup: %v", err)
	}
	if !got.Created.Equal(info.Created) {
		t.Fatalf("CheckBackup created %v, Backup %v", got.Created, info.Created)
	}
	got.Created = info.Created
	if got != info || lastDone != info.Size {
		t.Fatalf("CheckBackup = %+v after %d bytes, want %+v after %d", got, lastDone, info, info.Size)
	}
}

func TestBackupStopsWithContext(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Backup(ctx, &bytes.Buffer{}, BackupOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Backup with a canceled context: %v, want context.Canceled", err)
	}
}

func TestBackupBeginRefusal(t *testing.T) {
	clk := newFakeClock()
	src := openDisk(t, clk)
	fillBackupSource(t, src, clk, 10)
	refused := errors.New("refused")
	var buf bytes.Buffer
	var begun BackupInfo
	_, err := src.Backup(context.Background(), &buf, BackupOptions{Begin: func(i BackupInfo) error { begun = i; return refused }})
	if !errors.Is(err, refused) || buf.Len() != 0 {
		t.Fatalf("Backup whose Begin fails: %v with %d bytes written, want its error and nothing written", err, buf.Len())
	}
	if begun.NodeID != src.NodeID() || begun.Size == 0 || begun.Digest == "" {
		t.Fatalf("Begin got %+v, want the snapshot's description", begun)
	}
}

// TestBackupHeaderSize checks the header's size field against the file's
// length where the size's digits carry over.
func TestBackupHeaderSize(t *testing.T) {
	for _, stream := range []int64{0, 1, 899, 900, 910, 9_890, 9_999, 99_900} {
		h := backupHeader{Format: backupFormat, NodeID: crdt.NodeID(1).String(), Digest: "d"}
		head, err := encodeBackupHeader(&h, stream)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len(head)) + stream; h.Size != want {
			t.Fatalf("stream of %d: size %d, file of %d", stream, h.Size, want)
		}
	}
}
