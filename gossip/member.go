package gossip

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/serf/serf"
)

// Tags every member publishes.
const (
	TagID     = "id"     // node ID, 16 hex digits
	TagDomain = "domain" // the member's domain
	TagAddr   = "addr"   // binary protocol address, host:port
	TagRole   = "role"   // e.g. "node"
)

// Member is one member of the domain as this node sees it.
type Member struct {
	ID         string `json:"id"`          // node ID, 16 hex digits
	Domain     string `json:"domain"`      // from the "domain" tag
	Addr       string `json:"addr"`        // binary protocol address peers dial
	GossipAddr string `json:"gossip_addr"` // IP:port of its gossip listener
	Role       string `json:"role"`
	State      State  `json:"state"`
	Self       bool   `json:"self"` // this node
}

// State is a member's state in serf. Serf does not expose memberlist's
// "suspect": a suspect member stays Alive until it is declared failed.
type State uint8

// States. A member that leaves goes Leaving, then Left; one that stops
// answering goes Failed. Left and Failed members are forgotten after
// Config.TombstoneTimeout and Config.ReconnectTimeout.
const (
	StateUnknown State = iota
	StateAlive
	StateLeaving
	StateLeft
	StateFailed
)

var stateNames = [...]string{"unknown", "alive", "leaving", "left", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText renders the state's name, for `upu members --json`.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func stateOf(s serf.MemberStatus) State {
	switch s {
	case serf.StatusAlive:
		return StateAlive
	case serf.StatusLeaving:
		return StateLeaving
	case serf.StatusLeft:
		return StateLeft
	case serf.StatusFailed:
		return StateFailed
	}
	return StateUnknown
}

func toMember(m serf.Member, selfID string) Member {
	return Member{
		ID:         m.Name,
		Domain:     m.Tags[TagDomain],
		Addr:       m.Tags[TagAddr],
		GossipAddr: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))),
		Role:       m.Tags[TagRole],
		State:      stateOf(m.Status),
		Self:       m.Name == selfID,
	}
}

// domainFilter is serf's merge delegate: it refuses a join (or an alive
// message) that would bring in a member of another domain. The memberlist
// label already keeps other domains out; this holds even if labels do not.
type domainFilter struct{ domain string }

func (f domainFilter) NotifyMerge(members []*serf.Member) error {
	for _, m := range members {
		if d := m.Tags[TagDomain]; d != f.domain {
			return fmt.Errorf("gossip: member %s is in domain %q, not %q", m.Name, d, f.domain)
		}
	}
	return nil
}
