package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/upu/upu/client"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// errBackupMismatch is a backup file that does not hold what the node
// said it sent.
var errBackupMismatch = errors.New("upu: backup file does not match the node's backup")

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "write a consistent snapshot of a node's data to FILE (- for standard output), for upu restore; admin role",
		ArgsUsage: "FILE|-",
		Flags: []cli.Flag{
			jsonFlag(),
			&cli.DurationFlag{Name: "max-time", Usage: "give up after this long; 0: no limit (a backup is not bound by --timeout)"},
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "FILE|- [--json] [--max-time 10m]"); err != nil {
				return err
			}
			if c.Duration("max-time") < 0 {
				return fmt.Errorf("%w: --max-time must not be negative", ErrUsage)
			}
			ctx := c.Context
			if d := c.Duration("max-time"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			cfg := client.DefaultConfig()
			cfg.Nodes, cfg.Role, cfg.Token, cfg.Name = c.StringSlice("nodes"), protocol.RoleAdmin, c.String("token"), "upu-cli"
			cl, err := client.New(cfg)
			if err != nil {
				return err
			}
			defer cl.Close()
			path := c.Args().Get(0)
			report := c.App.Writer
			if path == "-" {
				report = c.App.ErrWriter // standard output carries the backup
			}
			prog := newProgress("backup", c.App.ErrWriter, clock.Real())
			var info protocol.BackupResponse
			if path == "-" {
				info, err = backupTo(ctx, cl, c.App.Writer, prog)
			} else {
				info, err = backupFile(ctx, cl, path, prog)
			}
			if err != nil {
				return err
			}
			return printBackup(report, c.Bool("json"), backupSummary{
				File: path, NodeID: info.NodeID, Domain: info.Domain, Created: time.UnixMilli(info.CreatedMS).UTC(),
				Keys: info.Keys, Bytes: info.Size, Digest: info.Digest,
			})
		},
	}
}

// backupTo streams the node's backup into w, buffered.
func backupTo(ctx context.Context, cl *client.Client, w io.Writer, prog *progress) (protocol.BackupResponse, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	info, err := cl.Backup(ctx, bw, prog.update)
	prog.finish()
	if err != nil {
		return info, err
	}
	return info, bw.Flush()
}

// backupFile writes the node's backup to path.tmp, syncs it, reads it
// back to check it is what the node announced, and renames it to path: a
// file at path is always a whole backup.
func backupFile(ctx context.Context, cl *client.Client, path string, prog *progress) (protocol.BackupResponse, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return protocol.BackupResponse{}, err
	}
	info, err := writeBackup(ctx, cl, f, prog)
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return protocol.BackupResponse{}, errors.Join(err, removeIfThere(tmp))
	}
	return info, nil
}

// writeBackup streams the backup into f, syncs it and checks it.
func writeBackup(ctx context.Context, cl *client.Client, f *os.File, prog *progress) (protocol.BackupResponse, error) {
	info, err := backupTo(ctx, cl, f, prog)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return info, err
	}
	got, err := store.CheckBackup(ctx, bufio.NewReaderSize(f, 1<<20), nil)
	if err != nil {
		return info, err
	}
	if got.NodeID.String() != info.NodeID || got.Digest != info.Digest || int64(got.Keys) != info.Keys || got.Size != info.Size {
		return info, fmt.Errorf("%w: the file holds node %s, digest %s over %d keys, %d bytes; the node sent node %s, %s over %d keys, %d bytes",
			errBackupMismatch, got.NodeID, got.Digest, got.Keys, got.Size, info.NodeID, info.Digest, info.Keys, info.Size)
	}
	return info, nil
}

func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "load a backup (FILE, - for standard input) into the empty data directory of a node that is not running, and check its digest",
		ArgsUsage: "FILE|- --data-dir DIR",
		Description: "The restored directory gets a new node ID, so that it can join the domain beside the node backed up:\n" +
			"two running nodes with one ID would corrupt replication. --keep-node-id is for a node that is gone for good.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "`DIR`: the new node's data directory, absent or empty"},
			&cli.BoolFlag{Name: "keep-node-id", Usage: "keep the backed-up node's ID (only if that node will never run again)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "FILE|- --data-dir DIR [--keep-node-id] [--json]"); err != nil {
				return err
			}
			path, dir := c.Args().Get(0), c.String("data-dir")
			if dir == "" {
				return fmt.Errorf("%w: %s needs --data-dir DIR, the new node's data directory", ErrUsage, commandPath(c))
			}
			var in io.Reader = c.App.Reader
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			prog := newProgress("restore", c.App.ErrWriter, clock.Real())
			got, err := store.Restore(c.Context, dir, bufio.NewReaderSize(in, 1<<20), store.RestoreOptions{
				KeepNodeID: c.Bool("keep-node-id"), Progress: prog.update,
			})
			prog.finish()
			if err != nil {
				return err
			}
			b := got.Backup
			return printBackup(c.App.Writer, c.Bool("json"), backupSummary{
				File: path, DataDir: dir, NodeID: got.NodeID.String(), SourceNodeID: b.NodeID.String(), Domain: b.Domain,
				Created: b.Created.UTC(), Keys: int64(b.Keys), Bytes: b.Size, Digest: b.Digest,
			})
		},
	}
}

// backupSummary is what backup and restore print at the end.
type backupSummary struct {
	File    string `json:"file"`
	DataDir string `json:"data_dir,omitempty"` // restore only
	// NodeID is the node backed up, or the restored directory's node.
	NodeID       string    `json:"node_id"`
	SourceNodeID string    `json:"source_node_id,omitempty"` // restore only: the node backed up
	Domain       string    `json:"domain"`
	Created      time.Time `json:"created"`
	Keys         int64     `json:"keys"`
	Bytes        int64     `json:"bytes"`
	Digest       string    `json:"digest"`
}

func printBackup(w io.Writer, asJSON bool, s backupSummary) error {
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	fmt.Fprintf(w, "file:     %s\n", s.File)
	if s.DataDir != "" {
		fmt.Fprintf(w, "data-dir: %s\n", s.DataDir)
	}
	fmt.Fprintf(w, "node:     %s\n", s.NodeID)
	if s.SourceNodeID != "" {
		fmt.Fprintf(w, "source:   %s\n", s.SourceNodeID)
	}
	fmt.Fprintf(w, "domain:   %s\n", s.Domain)
	fmt.Fprintf(w, "created:  %s\n", s.Created.Format(time.RFC3339Nano))
	fmt.Fprintf(w, "keys:     %d\n", s.Keys)
	fmt.Fprintf(w, "bytes:    %d (%s)\n", s.Bytes, mebibytes(s.Bytes))
	_, err := fmt.Fprintf(w, "digest:   %s\n", s.Digest)
	return err
}

// progress shows how far a backup or restore is on stderr: a bar on a
// terminal, otherwise a plain line at most once a second, none at all for
// one done within the first second.
type progress struct {
	verb string // "backup" or "restore"
	w    io.Writer
	clk  clock.Clock
	bar  *progressbar.ProgressBar // on a terminal, made at the first update
	tty  bool
	last time.Time // when a plain line was last due
}

func newProgress(verb string, w io.Writer, clk clock.Clock) *progress {
	f, ok := w.(*os.File)
	return &progress{verb: verb, w: w, clk: clk, tty: ok && term.IsTerminal(int(f.Fd())), last: clk.Now()}
}

// update reports done bytes of total.
func (p *progress) update(done, total int64) {
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.verb),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = p.bar.Set64(done)
		return
	}
	if now := p.clk.Now(); now.Sub(p.last) >= time.Second {
		p.last = now
		pct := 0
		if total > 0 {
			pct = int(done * 100 / total)
		}
		fmt.Fprintf(p.w, "%s: %s of %s, %d%%\n", p.verb, mebibytes(done), mebibytes(total), pct)
	}
}

// finish clears the bar.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// mebibytes formats n bytes as "12.3 MiB".
func mebibytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
