package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/upu/upu/client"
)

// backupSummary is what `upu backup --json` and `upu restore --json` print.
type backupSummary struct {
	NodeID       string `json:"node_id"`
	SourceNodeID string `json:"source_node_id"`
	Keys         int64  `json:"keys"`
	Bytes        int64  `json:"bytes"`
	Digest       string `json:"digest"`
}

// TestBackupUnderWriteLoad is the acceptance test of backup and restore:
// a node holding 100k keys (20k with -short) is backed up while a writer
// keeps changing and adding keys; the backup restored into a new data
// directory gives a node whose `upu digest` is the one the backup
// reported, under a node ID of its own.
func TestBackupUnderWriteLoad(t *testing.T) {
	keys := 100_000
	if testing.Short() {
		keys = 20_000
	}
	src := startNode(t, t.TempDir(), "127.0.0.1:0")
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{src.addr}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	setAll(t, cl, keys)

	// The write load: one writer overwriting old keys and adding new ones,
	// bounded in number, running from before the backup starts until it
	// has ended.
	const maxLoad = 50_000
	var written atomic.Int64
	stop, underWay := make(chan struct{}), make(chan struct{})
	markUnderWay := sync.OnceFunc(func() { close(underWay) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer markUnderWay() // a writer that failed early must not hold the test
		for i := 0; i < maxLoad; i++ {
			if i == 100 {
				markUnderWay()
			}
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("key:%06d", (i*7919)%(keys+maxLoad))
			if _, err := cl.Set(ctx, []byte(key), []byte(fmt.Sprintf("during-%d", i))); err != nil {
				t.Errorf("set %s during the backup: %v", key, err)
				return
			}
			written.Add(1)
		}
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	<-underWay // the load is under way before the backup begins

	file := filepath.Join(t.TempDir(), "src.upu")
	before := written.Load()
	out := mustCLI(t, src.addr, "backup", file, "--json")
	during := written.Load() - before
	stopLoad()
	var backup backupSummary
	if err := json.Unmarshal([]byte(out), &backup); err != nil {
		t.Fatalf("backup --json printed %q: %v", out, err)
	}
	t.Logf("backup: %d keys, %d bytes, %d writes completed while it ran", backup.Keys, backup.Bytes, during)
	if backup.Keys < int64(keys) {
		t.Fatalf("the backup holds %d keys, the node had at least %d", backup.Keys, keys)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	out = mustCLI(t, src.addr, "restore", file, "--data-dir", dir, "--json")
	var restored backupSummary
	if err := json.Unmarshal([]byte(out), &restored); err != nil {
		t.Fatalf("restore --json printed %q: %v", out, err)
	}
	if restored.Digest != backup.Digest || restored.Keys != backup.Keys || restored.SourceNodeID != backup.NodeID {
		t.Fatalf("restore reported %+v, the backup %+v", restored, backup)
	}
	if restored.NodeID == backup.NodeID {
		t.Fatalf("the restored directory kept the source's node ID %s", backup.NodeID)
	}

	dst := startNode(t, dir, "127.0.0.1:0")
	if got := mustCLI(t, dst.addr, "digest"); got != backup.Digest {
		t.Fatalf("the restored node's digest is %s, the backup reported %s", got, backup.Digest)
	}
	var st struct {
		NodeID string `json:"node_id"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dst.addr, "status", "--json")), &st); err != nil || st.NodeID != restored.NodeID {
		t.Fatalf("the restored node runs as %q (%v), restore said %s", st.NodeID, err, restored.NodeID)
	}
}

// setAll writes key:000000 … with 32 concurrent callers.
func setAll(t *testing.T, cl *client.Client, n int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				key := fmt.Sprintf("key:%06d", i)
				if _, err := cl.Set(context.Background(), []byte(key), []byte(fmt.Sprintf("value-%d", i))); err != nil {
					errs <- fmt.Errorf("set %s: %w", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
