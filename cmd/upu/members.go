package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

func membersCommand() *cli.Command {
	return &cli.Command{
		Name:  "members",
		Usage: "list the members of a node's domain: ID, domain, protocol address, gossip address, state",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			return withClient(c, protocol.RoleClient, func(ctx context.Context, cl *client.Client) error {
				ms, err := cl.Members(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(membersJSON(ms))
				}
				return printMembers(c.App.Writer, ms)
			})
		},
	}
}

// printMembers writes a header and one line per member, in aligned
// columns; an empty field (a node that does not gossip) prints as "-".
// Scripts read `members --json` instead.
func printMembers(w io.Writer, ms []protocol.Member) error {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tDOMAIN\tADDR\tGOSSIP-ADDR\tSTATE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.NodeID, m.Domain, dash(m.Addr), dash(m.GossipAddr), m.State)
	}
	return tw.Flush()
}

type membersDoc struct {
	Members []memberDoc `json:"members"`
}

type memberDoc struct {
	NodeID     string `json:"node_id"`
	Domain     string `json:"domain"`
	Addr       string `json:"addr"`
	GossipAddr string `json:"gossip_addr"`
	State      string `json:"state"`
	Self       bool   `json:"self"`
}

func membersJSON(ms []protocol.Member) membersDoc {
	doc := membersDoc{Members: make([]memberDoc, len(ms))}
	for i, m := range ms {
		doc.Members[i] = memberDoc(m)
	}
	return doc
}

// domainDoc is the membership and replication part of `upu status --json`.
type domainDoc struct {
	Members        int64     `json:"members"`
	Successor      string    `json:"successor"`
	Behind         uint64    `json:"repl_behind"` // the most any peer lacks
	EntriesSent    uint64    `json:"entries_sent"`
	EntriesApplied uint64    `json:"entries_applied"`
	SendErrors     uint64    `json:"send_errors"`
	Peers          []peerDoc `json:"peers"`
}

type peerDoc struct {
	NodeID       string `json:"node_id"`
	Addr         string `json:"addr"`
	Behind       uint64 `json:"behind"`
	Heard        bool   `json:"heard"`
	Unresponsive bool   `json:"unresponsive"`
	Snapshot     bool   `json:"snapshot"`
}

func domainJSON(st protocol.StatusResponse) domainDoc {
	doc := domainDoc{
		Members: st.Members, Successor: st.Successor, Behind: maxBehind(st.Peers),
		EntriesSent: st.EntriesSent, EntriesApplied: st.EntriesApplied, SendErrors: st.SendErrors,
		Peers: make([]peerDoc, len(st.Peers)),
	}
	for i, p := range st.Peers {
		doc.Peers[i] = peerDoc(p)
	}
	return doc
}

func maxBehind(ps []protocol.PeerStatus) uint64 {
	var m uint64
	for _, p := range ps {
		m = max(m, p.Behind)
	}
	return m
}

// printDomainStatus writes the membership and replication lines of
// `upu status`; a node that does not replicate has none.
func printDomainStatus(w io.Writer, st protocol.StatusResponse) {
	if st.Members == 0 {
		return
	}
	fmt.Fprintf(w, "members:  %d alive\n", st.Members)
	fmt.Fprintf(w, "ring:     successor %s, peers behind by at most %d entries\n", orNone(st.Successor), maxBehind(st.Peers))
	fmt.Fprintf(w, "repl:     %d entries sent, %d applied from peers, %d send errors, %d digest syncs\n", st.EntriesSent, st.EntriesApplied, st.SendErrors, st.Syncs)
	fmt.Fprintf(w, "stable:   %s\n", formatApplied(st.Stable))
	if st.Resyncing {
		fmt.Fprintf(w, "resync:   under way (back after longer than the tombstone horizon)\n")
	}
	for _, p := range st.Peers {
		var notes string
		if !p.Heard {
			notes += " not-heard"
		}
		if p.Unresponsive {
			notes += " unresponsive"
		}
		if p.Snapshot {
			notes += " digest-sync"
		}
		fmt.Fprintf(w, "peer:     %s %s behind %d%s\n", p.NodeID, p.Addr, p.Behind, notes)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
