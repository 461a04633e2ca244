package native

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// readBackup reads the frames answering the backup request id: the
// description, then the chunks until the last, each within the body limit
// the server stated. It returns the description and the file.
func readBackup(t *testing.T, w *wire, id uint64, maxBody uint32) (protocol.BackupResponse, []byte) {
	t.Helper()
	var info protocol.BackupResponse
	var file []byte
	for first := true; ; first = false {
		f := w.recv()
		switch {
		case f.Opcode != protocol.OpBackup || f.ReqID != id || !f.IsResponse():
			t.Fatalf("backup answered with %s for request %d (%v)", f.Opcode, f.ReqID, decodeErr(f))
		case f.Len > maxBody:
			t.Fatalf("a backup frame of %d bytes, over the stated limit %d", f.Len, maxBody)
		}
		if first {
			if err := protocol.DecodeBody(f.Body, &info); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var chunk protocol.BackupChunk
		if err := protocol.DecodeBody(f.Body, &chunk); err != nil {
			t.Fatal(err)
		}
		file = append(file, chunk.Data...)
		if chunk.End {
			return info, file
		}
	}
}

// TestBackupStream takes a backup over the protocol, after a write sent in
// the same read, and restores it: the file holds the write, is as long as
// announced, restores to the digest announced, and is audited.
func TestBackupStream(t *testing.T) {
	logDir := t.TempDir()
	n := startNode(t, options{AdminToken: "a", DataDir: t.TempDir(), LogDir: logDir, MaxValueSize: 1 << 10, Domain: "eu"})
	ctx := context.Background()
	for i := range 3000 {
		w := store.Write{Op: store.OpSet, Key: fmt.Appendf(nil, "key-%05d", i), Value: bytes.Repeat([]byte{'v'}, 100)}
		if res := n.st.Apply(ctx, w); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	ad := dial(t, n)
	hello := ad.hello(protocol.Hello{Role: protocol.RoleAdmin, Token: "a"})
	set, setID := ad.frame(protocol.OpSet, &protocol.SetRequest{Key: []byte("last"), Value: []byte("write")})
	backup, backupID := ad.frame(protocol.OpBackup, nil)
	ad.write(append(set, backup...))
	if f := ad.recv(); f.Opcode != protocol.OpSet || f.ReqID != setID {
		t.Fatalf("the set before the backup answered with %s (%v)", f.Opcode, decodeErr(f))
	}
	info, file := readBackup(t, ad, backupID, hello.MaxBody)
	ad.expectClosed()

	digest, keys, err := n.st.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.BackupResponse{NodeID: n.st.NodeID().String(), Domain: "eu", Digest: digest, Keys: int64(keys), CreatedMS: info.CreatedMS, Size: int64(len(file))}
	if info != want || keys != 3001 {
		t.Fatalf("backup described as %+v, want %+v with 3001 keys", info, want)
	}
	got, err := store.Restore(ctx, filepath.Join(t.TempDir(), "restored"), bytes.NewReader(file), store.RestoreOptions{})
	if err != nil {
		t.Fatalf("restoring the streamed backup: %v", err)
	}
	if got.Backup.Digest != digest || got.Backup.Domain != "eu" {
		t.Fatalf("restored %+v, want digest %s of domain eu", got.Backup, digest)
	}
	var audited bool
	for _, l := range auditLines(t, logDir) {
		if l["action"] == "backup" {
			audited = l["after"] == digest && l["actor"] != "" && l["req_id"] != ""
		}
	}
	if !audited {
		t.Fatalf("no audit line for the backup with after=%s, actor and req_id: %v", digest, auditLines(t, logDir))
	}
}

// TestBackupNeedsAdmin refuses a backup to the client role, naming the
// role it needs, and closes the connection.
func TestBackupNeedsAdmin(t *testing.T) {
	n := startNode(t, options{ClientToken: "c", AdminToken: "a"})
	cl := dial(t, n)
	cl.hello(protocol.Hello{Token: "c"})
	cl.send(protocol.OpBackup, nil)
	e := decodeErr(cl.recv())
	if e == nil || e.Code != protocol.CodeUnauthorized || !strings.Contains(e.Message, "admin") {
		t.Fatalf("client role asking for a backup: %+v, want unauthorized naming the admin role", e)
	}
	cl.expectClosed()
}

// TestShutdownEndsBackup: a backup under way when the server shuts down
// ends, answered unavailable, and the shutdown does not wait for it.
func TestShutdownEndsBackup(t *testing.T) {
	begun := make(chan struct{})
	n := startNode(t, options{backup: func(ctx context.Context, w io.Writer, begin func(protocol.BackupResponse) error) error {
		if err := begin(protocol.BackupResponse{Size: 1 << 30}); err != nil {
			return err
		}
		if _, err := w.Write([]byte("the first bytes")); err != nil {
			return err
		}
		close(begun)
		<-ctx.Done() // a store still being read
		return ctx.Err()
	}})
	ad := dial(t, n)
	ad.hello(protocol.Hello{Role: protocol.RoleAdmin})
	id := ad.send(protocol.OpBackup, nil)
	if f := ad.recv(); f.Opcode != protocol.OpBackup || f.ReqID != id {
		t.Fatalf("backup answered with %s (%v)", f.Opcode, decodeErr(f))
	}
	<-begun
	if err := n.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	e := decodeErr(ad.recv())
	if e == nil || e.Code != protocol.CodeUnavailable {
		t.Fatalf("a backup cut by shutdown ended with %+v, want unavailable", e)
	}
	ad.expectClosed()
}
