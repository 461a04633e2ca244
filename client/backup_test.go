package client

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/upu/upu/protocol"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBackup(t *testing.T) {
	file := make([]byte, 10_000)
	for i := range file {
		file[i] = byte(rand.N(256))
	}
	tests := []struct {
		name      string
		size      int64 // announced size; 0: the file's
		fail      protocol.Code
		firstDown bool // the first node listed is down
		wantErr   error
	}{
		{name: "in chunks"},
		{name: "from the second node", firstDown: true},
		{name: "shorter than announced", size: 20_000, wantErr: ErrProtocol},
		{name: "refused", fail: protocol.CodeUnauthorized, wantErr: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFake(t)
			fs.backup, fs.backupChunk, fs.backupSize, fs.backupFail = file, 1000, tt.size, tt.fail
			nodes := []string{fs.addr}
			if tt.firstDown {
				nodes = []string{closedAddr(t), fs.addr}
			}
			c := newTestClient(t, Config{Nodes: nodes, Role: protocol.RoleAdmin})
			var out bytes.Buffer
			var calls int
			var lastDone, lastTotal int64
			info, err := c.Backup(context.Background(), &out, func(done, total int64) { calls, lastDone, lastTotal = calls+1, done, total })
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Backup: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			want := protocol.BackupResponse{NodeID: fs.hello.NodeID, Domain: "test", Digest: "d1gest", Keys: 3, CreatedMS: 1700000000000, Size: int64(len(file))}
			if info != want {
				t.Fatalf("Backup = %+v, want %+v", info, want)
			}
			if !bytes.Equal(out.Bytes(), file) {
				t.Fatalf("wrote %d bytes, not the %d of the file", out.Len(), len(file))
			}
			if calls != 10 || lastDone != int64(len(file)) || lastTotal != int64(len(file)) {
				t.Fatalf("progress called %d times, last with %d of %d; want 10, ending %d of %d", calls, lastDone, lastTotal, len(file), len(file))
			}
		})
	}
}

// TestBackupCanceled ends a backup whose context ends while the node has
// sent nothing.
func TestBackupCanceled(t *testing.T) {
	fs := newFake(t)
	fs.silent.Store(true)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, Role: protocol.RoleAdmin})
	ctx, cancel := context.WithCancel(context.Background())
	fs.requests.Store(0)
	done := make(chan error, 1)
	go func() {
		_, err := c.Backup(ctx, &bytes.Buffer{}, nil)
		done <- err
	}()
	eventually(t, 5*time.Second, "the backup request reaches the node", func() bool { return fs.requests.Load() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Backup: %v, want context.Canceled", err)
	}
}
