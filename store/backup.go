package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/upu/upu/crdt"
)

// A backup file is a header followed by Badger's backup stream:
//
//	magic         8 bytes  "UPUBACK\n"
//	header length 4 bytes  big endian, at most 64 KiB
//	header        JSON     backupHeader: format (1), node_id, domain,
//	                       digest, keys, created (RFC 3339), size,
//	                       stream_sha256
//	stream        frames   Badger's backup format, as DB.Load reads it: each
//	                       frame an 8-byte little-endian length and a
//	                       protobuf pb.KVList
//
// and nothing after. size is the whole file's length, so that a file cut at
// a frame boundary, which Badger's Load would take as complete, is caught.
// digest and keys are Digest's, of the snapshot the stream holds, taken at
// created (a value expiring later than created counts as live).
//
// The stream is written from one Badger read transaction that also yields
// the digest: Badger's own DB.Backup reads each key range in a transaction
// of its own on a database that does not manage its timestamps, as the
// store's does not, so its ranges are not one snapshot, and the read
// timestamp of a stream (NewStreamAt) is for managed databases only. The
// stream holds the newest version of every live Badger key (records, the
// replication log, the applied vector, the indexes), which is all a store
// reads.

var (
	// ErrBadBackup is returned by Restore and CheckBackup for a file that
	// is not a backup, of a format they do not know, cut short, followed by
	// stray bytes, not of the checksum it states or, restored, not of the
	// digest it states.
	ErrBadBackup = errors.New("upu: bad backup")
	// ErrDirNotEmpty is returned by Restore for a data directory that holds
	// anything: a restore never mixes a backup with other data.
	ErrDirNotEmpty = errors.New("upu: data directory not empty")
)

const (
	backupMagic     = "UPUBACK\n"
	backupFormat    = 1
	maxBackupHeader = 64 << 10
	// backupFrame is the size past which a frame of the stream is closed.
	backupFrame = 1 << 20
)

// BackupInfo describes a backup: the snapshot it holds and where it came
// from.
type BackupInfo struct {
	NodeID  crdt.NodeID // the node backed up
	Domain  string      // its domain
	Digest  string      // Digest of the snapshot, at Created
	Keys    int         // the keys Digest covers
	Created time.Time   // when the snapshot was taken (ms precision)
	Size    int64       // the backup's length in bytes, header included
}

// backupHeader is BackupInfo as the file's header holds it.
type backupHeader struct {
	Format  int       `json:"format"`
	NodeID  string    `json:"node_id"`
	Domain  string    `json:"domain"`
	Digest  string    `json:"digest"`
	Keys    int       `json:"keys"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
	// StreamSHA256 is the SHA-256 (hex) of the stream: Digest covers the
	// data records only, this the rest too.
	StreamSHA256 string `json:"stream_sha256"`
}

// BackupOptions says what Backup records beyond the store's data.
type BackupOptions struct {
	// Domain is the node's domain, recorded in the header.
	Domain string
	// Begin, if set, is called with the backup's description once the
	// snapshot is taken, before anything is written: a caller that streams
	// the backup can announce its size. An error from it ends the backup.
	Begin func(BackupInfo) error
}

// Backup writes a consistent snapshot of the store to w in the backup
// format above, and returns its description. Writes go on meanwhile; the
// snapshot is of one instant. It reads the store twice within one read
// transaction (once to take the digest and the size, once to write),
// which keeps Badger from discarding the versions it reads until it ends.
func (s *Store) Backup(ctx context.Context, w io.Writer, opts BackupOptions) (BackupInfo, error) {
	var info BackupInfo
	err := s.view(func(txn *badger.Txn) error {
		created := time.UnixMilli(s.clk.Now().UnixMilli()).UTC()
		var d digester
		var streamSize int64
		sum := sha256.New()
		err := streamFrames(ctx, txn, func(item *badger.Item, value []byte) error {
			if k := item.Key(); k[0] == prefixRecord {
				rec, err := crdt.UnmarshalRecord(value)
				if err != nil {
					return fmt.Errorf("store: key %q: %w", k[1:], err)
				}
				d.add(k[1:], rec, created.UnixMilli())
			}
			return nil
		}, func(frame []byte) error {
			streamSize += int64(len(frame))
			sum.Write(frame)
			return nil
		})
		if err != nil {
			return err
		}
		h := backupHeader{
			Format: backupFormat, NodeID: s.self.String(), Domain: opts.Domain,
			Digest: d.sum(), Keys: d.n, Created: created, StreamSHA256: hex.EncodeToString(sum.Sum(nil)),
		}
		head, err := encodeBackupHeader(&h, streamSize)
		if err != nil {
			return err
		}
		info = h.info()
		if opts.Begin != nil {
			if err := opts.Begin(info); err != nil {
				return err
			}
		}
		if _, err := w.Write(head); err != nil {
			return err
		}
		return streamFrames(ctx, txn, nil, func(frame []byte) error {
			_, err := w.Write(frame)
			return err
		})
	})
	if err != nil {
		return BackupInfo{}, err
	}
	return info, nil
}

// streamFrames reads the newest version of every live key in txn, in key
// order, calls each (if set) for it, and hands emit the frames of a backup
// stream, each valid only during the call.
func streamFrames(ctx context.Context, txn *badger.Txn, each func(item *badger.Item, value []byte) error, emit func(frame []byte) error) error {
	it := txn.NewIterator(badger.DefaultIteratorOptions)
	defer it.Close()
	var list pb.KVList
	var frame []byte
	flush := func() error {
		var err error
		frame = binary.LittleEndian.AppendUint64(frame[:0], uint64(proto.Size(&list)))
		if frame, err = (proto.MarshalOptions{Deterministic: true}).MarshalAppend(frame, &list); err != nil {
			return fmt.Errorf("store: backup: %w", err)
		}
		list.Kv = list.Kv[:0]
		return emit(frame)
	}
	size, n := 0, 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		value, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("store: backup: key %x: %w", item.Key(), err)
		}
		if each != nil {
			if err := each(item, value); err != nil {
				return err
			}
		}
		list.Kv = append(list.Kv, &pb.KV{Key: item.KeyCopy(nil), Value: value, Version: item.Version()})
		if size += len(item.Key()) + len(value); size >= backupFrame {
			if err := flush(); err != nil {
				return err
			}
			size = 0
		}
	}
	if len(list.Kv) == 0 {
		return nil
	}
	return flush()
}

// encodeBackupHeader returns the magic, the header's length and h, with
// h.Size set to the file's length given the stream's.
func encodeBackupHeader(h *backupHeader, streamSize int64) ([]byte, error) {
	// The size counts the header, whose JSON counts the size's digits:
	// encode until the length holds still (it does by the second try but
	// for a carry into one more digit).
	var body []byte
	for h.Size = streamSize; ; {
		var err error
		if body, err = json.Marshal(h); err != nil {
			return nil, fmt.Errorf("store: backup header: %w", err)
		}
		size := int64(len(backupMagic)+4+len(body)) + streamSize
		if size == h.Size {
			break
		}
		h.Size = size
	}
	out := append([]byte(backupMagic), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(out[len(backupMagic):], uint32(len(body)))
	return append(out, body...), nil
}

// readBackupHeader reads what precedes the stream and checks it, returning
// the header and its length in bytes.
func readBackupHeader(r io.Reader) (backupHeader, int64, error) {
	var pre [len(backupMagic) + 4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return backupHeader{}, 0, fmt.Errorf("%w: reading the header: %w", ErrBadBackup, err)
	}
	if !bytes.Equal(pre[:len(backupMagic)], []byte(backupMagic)) {
		return backupHeader{}, 0, fmt.Errorf("%w: not a UPU backup (no %q at the start)", ErrBadBackup, backupMagic[:7])
	}
	n := binary.BigEndian.Uint32(pre[len(backupMagic):])
	if n > maxBackupHeader {
		return backupHeader{}, 0, fmt.Errorf("%w: a header of %d bytes, at most %d", ErrBadBackup, n, maxBackupHeader)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return backupHeader{}, 0, fmt.Errorf("%w: reading the header: %w", ErrBadBackup, err)
	}
	var h backupHeader
	if err := json.Unmarshal(body, &h); err != nil {
		return backupHeader{}, 0, fmt.Errorf("%w: header: %w", ErrBadBackup, err)
	}
	headLen := int64(len(pre)) + int64(n)
	var problems []error
	if h.Format != backupFormat {
		problems = append(problems, fmt.Errorf("format %d, this version reads %d", h.Format, backupFormat))
	}
	if _, err := crdt.ParseNodeID(h.NodeID); err != nil {
		problems = append(problems, fmt.Errorf("node_id: %w", err))
	}
	if h.Digest == "" || h.StreamSHA256 == "" {
		problems = append(problems, errors.New("no digest"))
	}
	if h.Size < headLen {
		problems = append(problems, fmt.Errorf("size %d is less than the header's %d bytes", h.Size, headLen))
	}
	if err := errors.Join(problems...); err != nil {
		return backupHeader{}, 0, fmt.Errorf("%w: header: %w", ErrBadBackup, err)
	}
	return h, headLen, nil
}

func (h *backupHeader) info() BackupInfo {
	id, _ := crdt.ParseNodeID(h.NodeID) // checked by readBackupHeader, or made from a NodeID
	return BackupInfo{NodeID: id, Domain: h.Domain, Digest: h.Digest, Keys: h.Keys, Created: h.Created, Size: h.Size}
}

// RestoreOptions tune Restore; the zero value restores under a new node ID.
type RestoreOptions struct {
	// KeepNodeID gives the directory the backed-up node's ID instead of a
	// new one. Only for a node that is gone for good: two running nodes
	// with one ID would both number their writes as that ID, and their
	// peers would take different writes for the same ones.
	KeepNodeID bool
	// Progress, if set, is called as the backup is read, with the bytes
	// read so far and the backup's size.
	Progress func(done, total int64)
	// Log receives Badger's messages; nil discards them.
	Log *logrus.Entry
}

// Restored is what Restore made.
type Restored struct {
	Backup BackupInfo  // the backup, as its header describes it
	NodeID crdt.NodeID // the node ID of the restored directory
}

// Restore loads the backup read from r into dir, which must be empty or
// absent (ErrDirNotEmpty), for a node to be started on it. It then opens
// the store and checks that its digest at the backup's time is the one
// the backup states; a backup that fails any check is ErrBadBackup, and
// leaves dir as it found it. The restored directory gets a new node ID
// unless opts.KeepNodeID.
func Restore(ctx context.Context, dir string, r io.Reader, opts RestoreOptions) (Restored, error) {
	created, err := emptyDir(dir)
	if err != nil {
		return Restored{}, err
	}
	h, headLen, err := readBackupHeader(r)
	if err != nil {
		return Restored{}, err
	}
	out, err := restore(ctx, dir, r, h, headLen, opts)
	if err != nil {
		err = errors.Join(err, undoRestore(dir, created))
		return Restored{}, err
	}
	return out, nil
}

// emptyDir checks that dir is absent or empty, and reports whether it is
// absent.
func emptyDir(dir string) (absent bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("store: restore: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("%w: %s holds %s", ErrDirNotEmpty, dir, entries[0].Name())
	}
	return false, nil
}

// undoRestore removes what a failed restore wrote into dir.
func undoRestore(dir string, created bool) error {
	if created {
		return os.RemoveAll(dir)
	}
	return errors.Join(os.RemoveAll(filepath.Join(dir, "badger")), os.RemoveAll(filepath.Join(dir, nodeIDFile)))
}

func restore(ctx context.Context, dir string, r io.Reader, h backupHeader, headLen int64, opts RestoreOptions) (Restored, error) {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	cfg := Config{Dir: dir}
	db, err := openBadger(cfg.withDefaults(), log)
	if err != nil {
		return Restored{}, err
	}
	stream := newStreamReader(ctx.Err, r, h, headLen, opts.Progress)
	err = stream.finish(db.Load(stream, 16))
	if err = errors.Join(err, db.Close()); err != nil {
		return Restored{}, err
	}
	info := h.info()
	if opts.KeepNodeID {
		if err := writeNodeID(dir, info.NodeID); err != nil {
			return Restored{}, err
		}
	}
	s, _, err := open(cfg, fixedClock(info.Created), log)
	if err != nil {
		return Restored{}, err
	}
	defer s.db.Close()
	var d digester
	err = s.view(func(txn *badger.Txn) error { return digestRecords(ctx, txn, &d, info.Created.UnixMilli()) })
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	if err != nil {
		return Restored{}, err
	}
	if got := d.sum(); got != info.Digest || d.n != info.Keys {
		return Restored{}, fmt.Errorf("%w: the restored data has digest %s over %d keys, the backup states %s over %d", ErrBadBackup, got, d.n, info.Digest, info.Keys)
	}
	return Restored{Backup: info, NodeID: s.self}, nil
}

// fixedClock is the time a restored store is checked at: the backup's.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// streamReader reads a backup's stream, after its header, for Load or
// CheckBackup: it counts it for the progress callback, hashes it, checks
// that no frame claims more bytes than the stream has left (Load would
// allocate what a corrupt length says), and stops once stopped reports an
// error, as Load takes no context.
type streamReader struct {
	stopped  func() error
	src      io.Reader // the whole backup, to find stray bytes after the stream
	r        io.Reader // the stream alone
	h        backupHeader
	sum      hash.Hash
	progress func(done, total int64)
	done     int64

	head  [8]byte // the frame length being read
	nhead int
	body  int64 // bytes of the current frame still to come
}

func newStreamReader(stopped func() error, r io.Reader, h backupHeader, headLen int64, progress func(done, total int64)) *streamReader {
	sum := sha256.New()
	return &streamReader{
		stopped: stopped, src: r, r: io.TeeReader(io.LimitReader(r, h.Size-headLen), sum),
		h: h, sum: sum, progress: progress, done: headLen,
	}
}

func (p *streamReader) Read(b []byte) (int, error) {
	if err := p.stopped(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	for i := 0; i < n; {
		if p.body > 0 {
			k := min(p.body, int64(n-i))
			p.body -= k
			i += int(k)
			continue
		}
		p.head[p.nhead] = b[i]
		p.nhead++
		i++
		if p.nhead == len(p.head) {
			p.nhead = 0
			p.body = int64(binary.LittleEndian.Uint64(p.head[:]))
			if left := p.h.Size - p.done - int64(i); p.body < 0 || p.body > left {
				return 0, fmt.Errorf("%w: a frame of %d bytes where %d are left", ErrBadBackup, uint64(p.body), left)
			}
		}
	}
	p.done += int64(n)
	if n > 0 && p.progress != nil {
		p.progress(p.done, p.h.Size)
	}
	return n, err
}

// finish judges the stream once its reader is done with it, err being
// the reader's error: a stream cut short, followed by stray bytes, or not
// of the SHA-256 the header states is ErrBadBackup.
func (p *streamReader) finish(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || err == nil && (p.done < p.h.Size || p.nhead > 0 || p.body > 0):
		return fmt.Errorf("%w: cut short: %d of its %d bytes", ErrBadBackup, p.done, p.h.Size)
	case err != nil && p.stopped() == nil && !errors.Is(err, ErrBadBackup):
		return fmt.Errorf("%w: %w", ErrBadBackup, err)
	case err != nil:
		return err
	}
	if n, _ := p.src.Read(make([]byte, 1)); n > 0 {
		return fmt.Errorf("%w: bytes after the %d the header states", ErrBadBackup, p.h.Size)
	}
	if got := hex.EncodeToString(p.sum.Sum(nil)); got != p.h.StreamSHA256 {
		return fmt.Errorf("%w: the stream's SHA-256 is %s, the header states %s", ErrBadBackup, got, p.h.StreamSHA256)
	}
	return nil
}

// CheckBackup reads a backup through and checks what can be checked
// without loading it: the header, the frames' lengths, the size and the
// stream's SHA-256. progress is as RestoreOptions'.
func CheckBackup(ctx context.Context, r io.Reader, progress func(done, total int64)) (BackupInfo, error) {
	h, headLen, err := readBackupHeader(r)
	if err != nil {
		return BackupInfo{}, err
	}
	stream := newStreamReader(ctx.Err, r, h, headLen, progress)
	_, err = io.Copy(io.Discard, stream)
	if err := stream.finish(err); err != nil {
		return BackupInfo{}, err
	}
	return h.info(), nil
}
