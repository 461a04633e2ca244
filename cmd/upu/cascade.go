package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// setParentUsage is the form of cascade set-parent's arguments.
const setParentUsage = "DOMAIN HOST:PORT[,HOST:PORT...]"

func cascadeCommand() *cli.Command {
	return &cli.Command{
		Name:  "cascade",
		Usage: "the domain hierarchy: a node's place in it, and its domain's parent",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "show the parent and path to the root, the relay, lag per origin, what was relayed, the child domains",
				Flags: []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 0, 0, "[--json]"); err != nil {
						return err
					}
					return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
						st, err := cl.CascadeStatus(ctx)
						if err != nil {
							return err
						}
						return printCascade(c, st)
					})
				},
			},
			{
				Name:      "set-parent",
				Usage:     "make DOMAIN, reached through the protocol addresses of some of its members, the parent of the node's domain",
				ArgsUsage: setParentUsage,
				Flags:     []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 2, 2, setParentUsage); err != nil {
						return err
					}
					domain := c.Args().Get(0)
					seeds, err := parseSeeds(c.Args().Get(1))
					if err != nil {
						return err
					}
					return withClient(c, protocol.RoleAdmin, func(ctx context.Context, cl *client.Client) error {
						st, err := cl.SetParent(ctx, domain, seeds)
						if err != nil {
							return err
						}
						return printCascade(c, st)
					})
				},
			},
			{
				Name:  "clear-parent",
				Usage: "make the node's domain a root",
				Flags: []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 0, 0, "takes no arguments"); err != nil {
						return err
					}
					return withClient(c, protocol.RoleAdmin, func(ctx context.Context, cl *client.Client) error {
						st, err := cl.ClearParent(ctx)
						if err != nil {
							return err
						}
						return printCascade(c, st)
					})
				},
			},
		},
	}
}

// parseSeeds splits the seeds argument of set-parent, each a HOST:PORT.
func parseSeeds(arg string) ([]string, error) {
	var seeds []string
	for _, s := range strings.Split(arg, ",") {
		host, port, err := net.SplitHostPort(s)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || host == "" || perr != nil || n == 0 {
			return nil, fmt.Errorf("%w: upu cascade set-parent: seed %q is not HOST:PORT (e.g. 10.0.0.1:7700; several are joined by commas)", ErrUsage, s)
		}
		seeds = append(seeds, s)
	}
	return seeds, nil
}

// printCascade prints a cascade status, as one JSON document with --json.
func printCascade(c *cli.Context, st protocol.CascadeStatus) error {
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(st)
	}
	return printCascadeStatus(c.App.Writer, st)
}

// printCascadeStatus writes the readable block of `upu cascade status`:
// one "name: value" line per part, then the lag per origin and the child
// domains as tables with a header. Scripts read --json instead.
func printCascadeStatus(w io.Writer, st protocol.CascadeStatus) error {
	line := func(name, format string, a ...any) {
		fmt.Fprintf(w, "%-12s"+format+"\n", append([]any{name + ":"}, a...)...)
	}
	line("domain", "%s", st.Domain)
	if st.Parent == "" {
		line("parent", "none (this domain is a root)")
	} else {
		parent := st.Parent + ", seeds " + strings.Join(st.Seeds, ",")
		if len(st.ParentMembers) > 0 {
			parent += "; members " + strings.Join(st.ParentMembers, ",")
		}
		line("parent", "%s", parent)
	}
	if len(st.Path) > 0 {
		line("path", "%s", strings.Join(st.Path, " -> "))
	}
	if st.Reason != "" {
		line("state", "%s: %s", st.State, st.Reason)
	} else {
		line("state", "%s", st.State)
	}
	line("relay", "%s", orNone(st.Relay))
	if st.Upstream != "" || st.UpstreamAddr != "" {
		line("upstream", "%s", strings.TrimSpace(st.Upstream+" "+st.UpstreamAddr))
	}
	line("lag", "%d entries, %s seconds", st.LagEntries, seconds(st.LagSeconds))
	if len(st.Origins) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ORIGIN\tENTRIES\tSECONDS")
		for _, o := range st.Origins {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", o.Origin, o.Entries, seconds(o.Seconds))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	line("relayed", "%d entries, %d bytes", st.EntriesRelayed, st.BytesRelayed)
	if st.LastError != "" {
		at := ""
		if st.LastErrorMS != 0 {
			at = " (at " + msUTC(st.LastErrorMS) + ")"
		}
		line("last error", "%s%s", st.LastError, at)
	}
	if len(st.Children) == 0 {
		line("children", "none")
		return nil
	}
	line("children", "%d", len(st.Children))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  DOMAIN\tRELAY\tLAST-SEEN")
	for _, ch := range st.Children {
		// A child known by its setting, whose relay reports to another
		// member of this domain.
		relay, seen := "-", "- (reports to another member)"
		if ch.Relay != "" {
			relay, seen = ch.Relay, msUTC(ch.LastSeenMS)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", ch.Domain, relay, seen)
	}
	return tw.Flush()
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }

func msUTC(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
