package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/upu/upu/crdt"
)

const nodeIDFile = "node-id"

// randomNodeID returns a random non-zero node ID.
func randomNodeID() (crdt.NodeID, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("store: node id: %w", err)
		}
		if id := crdt.NodeID(binary.BigEndian.Uint64(b[:])); id != 0 {
			return id, nil
		}
	}
}

// LoadNodeID returns the node ID kept in dir, making it the first time; a
// store opened on dir reports the same ID. With inMemory it returns a new
// random ID, to be passed to an in-memory store as Config.NodeID.
func LoadNodeID(dir string, inMemory bool) (crdt.NodeID, error) {
	if inMemory {
		return randomNodeID()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return loadNodeID(dir)
}

// loadNodeID reads dir/node-id, creating it with a random ID the first time.
// The file is written to a temporary name, synced and renamed, so a crash
// never leaves a half-written ID behind.
func loadNodeID(dir string) (crdt.NodeID, error) {
	path := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := crdt.ParseNodeID(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("store: %s: %w", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("store: read node id: %w", err)
	}
	id, err := randomNodeID()
	if err != nil {
		return 0, err
	}
	if err := writeNodeID(dir, id); err != nil {
		return 0, err
	}
	return id, nil
}

// writeNodeID writes id as dir's node ID.
func writeNodeID(dir string, id crdt.NodeID) error {
	path := filepath.Join(dir, nodeIDFile)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, []byte(id.String()+"\n")); err != nil {
		return fmt.Errorf("store: write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: write node id: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("store: write node id: %w", err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
