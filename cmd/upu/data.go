package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/client"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/protocol"
)

const defaultTimeout = 5 * time.Second

// withClient connects to --nodes with role, runs fn under --timeout, and
// closes the client.
func withClient(c *cli.Context, role protocol.Role, fn func(ctx context.Context, cl *client.Client) error) error {
	cfg := client.DefaultConfig()
	cfg.Nodes = c.StringSlice("nodes")
	cfg.Role = role
	cfg.Token = c.String("token")
	cfg.Name = "upu-cli"
	cfg.RequestTimeout = c.Duration("timeout")
	cl, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	return fn(ctx, cl)
}

func args(c *cli.Context, min, max int, usage string) error {
	if n := c.NArg(); n < min || n > max {
		return fmt.Errorf("%w: %s %s", ErrUsage, commandPath(c), usage)
	}
	return nil
}

func setCommand() *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "write a value: given as an argument, `-` for standard input, or --value-file",
		ArgsUsage: "KEY [VALUE|-]",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "ttl", Usage: "expire the value after this long (e.g. 30s)"},
			&cli.StringFlag{Name: "value-file", Usage: "read the value from `FILE` (for values too long for an argument)"},
		},
		Action: func(c *cli.Context) error {
			const usage = "KEY VALUE|- [--ttl 30s], or KEY --value-file FILE"
			if err := args(c, 1, 2, usage); err != nil {
				return err
			}
			if c.Duration("ttl") < 0 {
				return fmt.Errorf("%w: --ttl must not be negative", ErrUsage)
			}
			value, err := setValue(c, usage)
			if err != nil {
				return err
			}
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				var opts []client.SetOption
				if ttl := c.Duration("ttl"); ttl > 0 {
					opts = append(opts, client.WithTTL(ttl))
				}
				_, err := cl.Set(ctx, []byte(c.Args().Get(0)), value, opts...)
				return err
			})
		},
	}
}

// setValue is the value of a set: its second argument, standard input
// read whole for "-", or the file of --value-file; exactly one of them.
func setValue(c *cli.Context, usage string) ([]byte, error) {
	file := c.String("value-file")
	switch {
	case c.NArg() == 2 && file != "":
		return nil, fmt.Errorf("%w: a value and --value-file: give one of them", ErrUsage)
	case file != "":
		v, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--value-file: %w", err)
		}
		return v, nil
	case c.NArg() < 2:
		return nil, fmt.Errorf("%w: %s %s", ErrUsage, commandPath(c), usage)
	case c.Args().Get(1) == "-":
		v, err := io.ReadAll(c.App.Reader)
		if err != nil {
			return nil, fmt.Errorf("reading the value from standard input: %w", err)
		}
		return v, nil
	}
	return []byte(c.Args().Get(1)), nil
}

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print a value; a missing key prints `not found` on stderr and exits 1",
		ArgsUsage: "KEY",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Value: "local", Usage: "local; up asks the parent domain on a local miss, recursively; root asks the root and merges with the local answer (the domain that answered goes to stderr)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document: the value and the domain that answered"},
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "KEY [--scope local|up|root] [--json]"); err != nil {
				return err
			}
			scope, err := parseScope(c.String("scope"))
			if err != nil {
				return err
			}
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				item, err := cl.Get(ctx, []byte(c.Args().Get(0)), client.WithScope(scope))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(getDoc{Value: string(item.Value), Domain: item.Domain})
				}
				out := append(item.Value, '\n')
				if _, err := c.App.Writer.Write(out); err != nil {
					return err
				}
				if item.Domain != "" {
					// stdout stays the value alone, for scripts.
					_, err = fmt.Fprintf(c.App.ErrWriter, "(domain %s)\n", item.Domain)
				}
				return err
			})
		},
	}
}

// getDoc is `upu get --json`: the domain is empty for a local read.
type getDoc struct {
	Value  string `json:"value"`
	Domain string `json:"domain"`
}

func parseScope(s string) (protocol.Scope, error) {
	switch s {
	case "local":
		return protocol.ScopeLocal, nil
	case "up":
		return protocol.ScopeUp, nil
	case "root":
		return protocol.ScopeRoot, nil
	}
	return 0, fmt.Errorf("--scope %q: want local, up or root", s)
}

func delCommand() *cli.Command {
	return &cli.Command{
		Name:      "del",
		Usage:     "delete a key",
		ArgsUsage: "KEY",
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "KEY"); err != nil {
				return err
			}
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				return cl.Del(ctx, []byte(c.Args().Get(0)))
			})
		},
	}
}

// incrCommand builds incr (sign 1) and decr (sign -1); both print the new value.
func incrCommand(name string, sign int64) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     name + "ement a counter by N (default 1) and print its new value",
		ArgsUsage: "KEY [N]",
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 2, "KEY [N]"); err != nil {
				return err
			}
			n := int64(1)
			if c.NArg() == 2 {
				v, err := strconv.ParseInt(c.Args().Get(1), 10, 64)
				if err != nil {
					return fmt.Errorf("N must be an integer: %q", c.Args().Get(1))
				}
				n = v
			}
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				v, err := cl.Incr(ctx, []byte(c.Args().Get(0)), sign*n)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.App.Writer, v)
				return err
			})
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show a node's ID, domain, keys, log and applied version vector",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				st, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(statusJSON(st))
				}
				w := c.App.Writer
				fmt.Fprintf(w, "node:     %s\n", st.NodeID)
				fmt.Fprintf(w, "domain:   %s\n", st.Domain)
				fmt.Fprintf(w, "version:  %s\n", st.Version)
				fmt.Fprintf(w, "addr:     %s\n", st.Addr)
				fmt.Fprintf(w, "started:  %s\n", time.UnixMilli(st.StartedMS).UTC().Format(time.RFC3339))
				fmt.Fprintf(w, "keys:     %d\n", st.Keys)
				fmt.Fprintf(w, "log:      %d entries\n", st.LogLen)
				fmt.Fprintf(w, "conns:    %d\n", st.Conns)
				fmt.Fprintf(w, "applied:  %s\n", formatApplied(st.Applied))
				fmt.Fprintf(w, "deleted:  %d kept for their context, %d dropped when stable, %d at the horizon\n", st.DeadRecords, st.DroppedStable, st.DroppedHorizon)
				printDomainStatus(w, st)
				return nil
			})
		},
	}
}

type statusDoc struct {
	NodeID  string            `json:"node_id"`
	Domain  string            `json:"domain"`
	Version string            `json:"version"`
	Addr    string            `json:"addr"`
	Started time.Time         `json:"started"`
	Keys    int64             `json:"keys"`
	LogLen  int64             `json:"log_len"`
	Conns   int64             `json:"conns"`
	Applied map[string]uint64 `json:"applied"`

	DeadRecords    int64             `json:"dead_records"`
	DroppedStable  uint64            `json:"dropped_stable"`
	DroppedHorizon uint64            `json:"dropped_horizon"`
	Stable         map[string]uint64 `json:"stable"`
	Resyncing      bool              `json:"resyncing"`
	Resyncs        uint64            `json:"resyncs"`
	Syncs          uint64            `json:"syncs"`
	domainDoc
}

func statusJSON(st protocol.StatusResponse) statusDoc {
	return statusDoc{
		NodeID: st.NodeID, Domain: st.Domain, Version: st.Version, Addr: st.Addr,
		Started: time.UnixMilli(st.StartedMS).UTC(), Keys: st.Keys, LogLen: st.LogLen,
		Conns: st.Conns, Applied: st.Applied,
		DeadRecords: st.DeadRecords, DroppedStable: st.DroppedStable, DroppedHorizon: st.DroppedHorizon,
		Stable: st.Stable, Resyncing: st.Resyncing, Resyncs: st.Resyncs, Syncs: st.Syncs,
		domainDoc: domainJSON(st),
	}
}

func formatApplied(m map[string]uint64) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func digestCommand() *cli.Command {
	return &cli.Command{
		Name:  "digest",
		Usage: "print a hex digest of the node's live data (key, winning value, expiry)",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				d, err := cl.Digest(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(struct {
						Digest string `json:"digest"`
					}{d.Digest})
				}
				_, err = fmt.Fprintln(c.App.Writer, d.Digest)
				return err
			})
		},
	}
}

func logLevelCommand() *cli.Command {
	return settingCommand(setting{
		name: "log-level", jsonKey: "level", arg: "LEVEL", help: "one of " + logLevels,
		usage: "print a node's log level, or change it at run time (" + logLevels + ")",
		call:  (*client.Client).LogLevel,
	})
}

func slowThresholdCommand() *cli.Command {
	return settingCommand(setting{
		name: "slow-threshold", jsonKey: "threshold", arg: "DURATION", help: "e.g. 50ms",
		usage: "print a node's slow-operation threshold, or change it at run time (e.g. 50ms)",
		check: func(v string) error {
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				return fmt.Errorf("%w: slow-threshold %q: a duration needs a unit, e.g. 50ms, 1s", ErrUsage, v)
			}
			return nil
		},
		call: (*client.Client).SlowThreshold,
	})
}

// setting is a node setting that an admin command prints, or changes when
// given a value.
type setting struct {
	name, usage string
	arg, help   string                   // the value's name in the usage line, and what it takes
	jsonKey     string                   // its key in the --json document
	check       func(value string) error // nil: the node judges the value alone
	call        func(cl *client.Client, ctx context.Context, value string) (string, error)
}

// settingCommand is the command that prints s's value now, or sets it first.
func settingCommand(s setting) *cli.Command {
	return &cli.Command{
		Name:      s.name,
		Usage:     s.usage,
		ArgsUsage: "[" + s.arg + "]",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := args(c, 0, 1, "["+s.arg+"]: "+s.help); err != nil {
				return err
			}
			value := c.Args().Get(0)
			if value != "" && s.check != nil {
				if err := s.check(value); err != nil {
					return err
				}
			}
			return withClient(c, protocol.RoleAdmin, func(ctx context.Context, cl *client.Client) error {
				now, err := s.call(cl, ctx, value)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(map[string]string{s.jsonKey: now})
				}
				_, err = fmt.Fprintln(c.App.Writer, now)
				return err
			})
		},
	}
}

// logLevels are the level names a node takes, as the logging package
// accepts them ("warning" is taken for "warn" too).
const logLevels = "debug, info, warn, error, fatal"

// jsonFlag is --json of every admin command.
func jsonFlag() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print one JSON document"} }

func reqidCommand() *cli.Command {
	return &cli.Command{
		Name:  "reqid",
		Usage: "request IDs",
		Subcommands: []*cli.Command{{
			Name:      "decode",
			Usage:     "print the time, node and random part of a request ID",
			ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				if err := args(c, 1, 1, "ID"); err != nil {
					return err
				}
				id, err := reqid.Parse(c.Args().Get(0))
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.App.Writer, "time=%s node=%s random=%08x\n",
					id.Time().UTC().Format(time.RFC3339Nano), id.NodePrefix(), id.Random())
				return err
			},
		}},
	}
}
