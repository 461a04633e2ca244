package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/upu/upu/node"
	"github.com/upu/upu/store"
)

// serveFlags can each be set on the command line or in the YAML file named
// by --config; the command line wins.
func serveFlags() []cli.Flag {
	d := node.DefaultConfig()
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML `FILE` with any of these flags as keys"},
		&cli.BoolFlag{Name: "check", Usage: "check the flags and the config file, print `config ok`, and exit without serving"},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data-dir", Value: d.DataDir, Usage: "where the node keeps its data and node ID"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "addr", Value: d.Addr, Usage: "binary protocol listener"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "gossip-addr", Value: d.Gossip.BindAddr, Usage: "gossip listener, `IP:PORT` (UDP and TCP); port 0 picks one"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "domain", Value: d.Domain, Usage: "the domain (data center) this node belongs to"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "join", Usage: "gossip addresses of members to join, `HOST:PORT[,...]`; retried until one answers"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "gossip-key-file", Usage: "serf keyring `FILE` (base64 AES keys): encrypts gossip; only members with a key can join"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "resp-addr", Usage: "Redis protocol listener (off unless set)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-addr", Usage: "metrics and health listener: /metrics, /healthz, /readyz, /debug/pprof (off unless set)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "pprof", Usage: "also serve Go's profiler under /debug/pprof/ on --http-addr (off: a profile shows memory and code paths to whoever reaches the address)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "ready-lag", Value: d.ReadyLag, Usage: "/readyz answers 503 while the node lags a member by more log entries than this"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "sync", Usage: "fsync every commit (grouped) instead of every sync-interval"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "sync-interval", Value: d.Store.SyncInterval, Usage: "fsync period when --sync is off"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "heartbeat-interval", Value: d.HeartbeatInterval, Usage: "announced to clients: send a frame at least this often"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "idle-timeout", Value: d.IdleTimeout, Usage: "announced to clients: silent connections are closed after this"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "handshake-timeout", Value: d.HandshakeTimeout, Usage: "a new connection that has not completed its hello by then is closed"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "shutdown-timeout", Value: d.ShutdownTimeout, Usage: "how long shutdown waits for requests in flight"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-key-size", Value: d.Store.MaxKeySize, Usage: "largest key in bytes"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-value-size", Value: d.Store.MaxValueSize, Usage: "largest value in bytes"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "tombstone-horizon", Value: d.Store.TombstoneHorizon, Usage: "how long a delete is remembered while a member is down; a member away longer resyncs"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "max-memory", Value: humanize.IBytes(uint64(d.Store.MaxMemory)), Usage: "memory the node's caches and buffers share (512MiB, 2GiB); the Go runtime is also held under it, unless GOMEMLIMIT is set"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "max-log-entries", Value: d.Store.MaxLogEntries, Usage: "replication log kept per origin; members further behind get a digest sync"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "cascade-lag-warn", Value: d.Cascade.LagWarn, Usage: "relay lag towards the parent domain past which the relay warns (once per episode)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-conns", Value: d.MaxConns, Usage: "most concurrent client connections"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-conns-per-client", Value: d.MaxConnsPerClient, Usage: "most concurrent connections from one client IP address, loopback included"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-pipeline", Value: d.MaxPipeline, Usage: "most pipelined requests of a connection handled before their answers are written; reading waits meanwhile"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-reply-buffer", Value: d.MaxReplyBuffer, Usage: "most bytes of answers a connection holds; a client that does not read them within --idle-timeout is disconnected"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "client-token", EnvVars: []string{"UPU_CLIENT_TOKEN"}, Usage: "token clients must present (open if empty)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "peer-token", EnvVars: []string{"UPU_PEER_TOKEN"}, Usage: "token peers must present"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "admin-token", EnvVars: []string{"UPU_ADMIN_TOKEN"}, Usage: "token admin commands must present"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-level", Value: d.Log.Level, Usage: logLevels}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-format", Value: d.Log.Format, Usage: "text (logfmt) or json"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-dir", Usage: "write upu.log, error.log (warn and above) and audit.log (admin changes) here, rotated; stderr still gets the log unless --quiet"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "quiet", Usage: "with --log-dir, keep the log off stderr"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "log-max-size-mb", Value: d.Log.MaxSizeMB, Usage: "rotate a log file when it would pass this size"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "log-rotate-every", Value: d.Log.RotateEvery, Usage: "also rotate a log file that is not empty this often"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "log-max-age-days", Value: d.Log.MaxAgeDays, Usage: "remove rotated log files older than this"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "log-max-backups", Value: d.Log.MaxBackups, Usage: "keep at most this many rotated files per log"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "slow-threshold", Value: d.Log.SlowThreshold, Usage: "requests slower than this are logged at WARN"}),
	}
}

func serveCommand() *cli.Command {
	flags := serveFlags()
	return &cli.Command{
		Name:   "serve",
		Usage:  "run a node until SIGINT or SIGTERM",
		Flags:  flags,
		Before: loadConfigFile(flags),
		Action: serve,
	}
}

// loadConfigFile applies the YAML file named by --config, if any, to the
// flags not set on the command line, once checkConfigFile has found no
// problem in it.
func loadConfigFile(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		path := c.String("config")
		if path == "" {
			return nil
		}
		if err := checkConfigFile(path, flags); err != nil {
			return err
		}
		src, err := altsrc.NewYamlSourceFromFile(path)
		if err != nil {
			return fmt.Errorf("%w: config file %s: %w", node.ErrConfig, path, err)
		}
		return altsrc.ApplyInputSourceValues(c, src, flags)
	}
}

func serve(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q; flags start with --", ErrUsage, c.Args().First())
	}
	if err := explicitZeros(c); err != nil {
		return err
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = c.String("data-dir")
	cfg.Addr = c.String("addr")
	cfg.Domain = c.String("domain")
	cfg.Gossip.BindAddr = c.String("gossip-addr")
	cfg.Gossip.Join = c.StringSlice("join")
	cfg.Gossip.KeyringFile = c.String("gossip-key-file")
	cfg.HTTPAddr = c.String("http-addr")
	cfg.RespAddr = c.String("resp-addr")
	cfg.Store.SyncWrites = c.Bool("sync")
	cfg.Store.SyncInterval = c.Duration("sync-interval")
	cfg.HeartbeatInterval = c.Duration("heartbeat-interval")
	cfg.IdleTimeout = c.Duration("idle-timeout")
	cfg.HandshakeTimeout = c.Duration("handshake-timeout")
	cfg.ShutdownTimeout = c.Duration("shutdown-timeout")
	cfg.Store.MaxKeySize = c.Int("max-key-size")
	cfg.Store.MaxValueSize = c.Int("max-value-size")
	cfg.MaxConns = c.Int("max-conns")
	cfg.MaxConnsPerClient = c.Int("max-conns-per-client")
	cfg.MaxPipeline = c.Int("max-pipeline")
	cfg.MaxReplyBuffer = c.Int("max-reply-buffer")
	cfg.ReadyLag = c.Int64("ready-lag")
	cfg.HTTP.Pprof = c.Bool("pprof")
	cfg.Store.TombstoneHorizon = c.Duration("tombstone-horizon")
	cfg.Store.MaxLogEntries = c.Int64("max-log-entries")
	mem, err := humanize.ParseBytes(c.String("max-memory"))
	switch {
	case err != nil || mem > math.MaxInt64:
		return fmt.Errorf("%w: max-memory %q: want a size such as 512MiB or 2GiB", node.ErrConfig, c.String("max-memory"))
	case mem < store.MinMaxMemory:
		return fmt.Errorf("%w: max-memory %q: must be at least %s", node.ErrConfig, c.String("max-memory"), humanize.IBytes(store.MinMaxMemory))
	}
	cfg.Store.MaxMemory = int64(mem)
	cfg.Cascade.LagWarn = c.Duration("cascade-lag-warn")
	cfg.ClientToken = c.String("client-token")
	cfg.PeerToken = c.String("peer-token")
	cfg.AdminToken = c.String("admin-token")
	cfg.Log.Level = c.String("log-level")
	cfg.Log.Format = c.String("log-format")
	cfg.Log.Dir = c.String("log-dir")
	cfg.Log.SlowThreshold = c.Duration("slow-threshold")
	cfg.Log.Quiet = c.Bool("quiet")
	cfg.Log.MaxSizeMB = c.Int("log-max-size-mb")
	cfg.Log.RotateEvery = c.Duration("log-rotate-every")
	cfg.Log.MaxAgeDays = c.Int("log-max-age-days")
	cfg.Log.MaxBackups = c.Int("log-max-backups")
	cfg.ConfigFile = c.String("config")

	if c.Bool("check") {
		if err := cfg.Validate(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.App.Writer, "config ok")
		return err
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		// The store bounds its caches and buffers; this makes the garbage
		// collector hold the rest of the heap too, working harder near it.
		debug.SetMemoryLimit(cfg.Store.MaxMemory)
	}
	n, err := node.New(cfg, nil)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return errors.Join(err, n.Close())
	}
	<-c.Context.Done()
	return n.Close()
}

// mustNotBeZero lists the serve flags for which zero or empty is no valid
// setting: the node's config would read it as "the default", so a flag set
// to it on purpose is refused instead of silently replaced.
var mustNotBeZero = []string{
	"data-dir", "addr", "gossip-addr", "domain", "sync-interval", "heartbeat-interval",
	"idle-timeout", "handshake-timeout", "shutdown-timeout", "max-key-size", "max-value-size",
	"tombstone-horizon", "max-log-entries", "cascade-lag-warn", "max-conns", "max-conns-per-client", "max-pipeline", "max-reply-buffer", "log-level", "log-format",
	"log-max-size-mb", "log-rotate-every", "log-max-age-days", "log-max-backups", "ready-lag",
}

// explicitZeros reports every flag of mustNotBeZero set, on the command
// line or in the config file, to zero or empty.
func explicitZeros(c *cli.Context) error {
	var errs []error
	for _, name := range mustNotBeZero {
		if !c.IsSet(name) {
			continue
		}
		f := lookupFlag(c.Command.Flags, "--"+name)
		g, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		if v := c.Value(name); isZero(v) {
			errs = append(errs, fmt.Errorf("%w: --%s %q: must not be zero or empty; leave it out for the default (%s)", node.ErrConfig, name, fmt.Sprint(v), g.GetDefaultText()))
		}
	}
	return errors.Join(errs...)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case int:
		return x == 0
	case int64:
		return x == 0
	case time.Duration:
		return x == 0
	}
	return v == nil
}
