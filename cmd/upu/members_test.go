package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/upu/upu/protocol"
)

func TestPrintMembers(t *testing.T) {
	ms := []protocol.Member{
		{NodeID: "00000000000000a1", Domain: "dc1", Addr: "10.0.0.1:7700", GossipAddr: "10.0.0.1:7946", State: "alive", Self: true},
		{NodeID: "00000000000000b2", Domain: "dc1", Addr: "10.0.0.2:7700", State: "failed"},
	}
	var out bytes.Buffer
	if err := printMembers(&out, ms); err != nil {
		t.Fatal(err)
	}
	want := "NODE              DOMAIN  ADDR           GOSSIP-ADDR    STATE\n" +
		"00000000000000a1  dc1     10.0.0.1:7700  10.0.0.1:7946  alive\n" +
		"00000000000000b2  dc1     10.0.0.2:7700  -              failed\n"
	if out.String() != want {
		t.Fatalf("members:\n%s\nwant:\n%s", out.String(), want)
	}

	b, err := json.Marshal(membersJSON(ms))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Members []map[string]any `json:"members"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Members) != 2 {
		t.Fatalf("members --json = %s (%v)", b, err)
	}
	for _, field := range []string{"node_id", "domain", "addr", "gossip_addr", "state", "self"} {
		if _, ok := doc.Members[0][field]; !ok {
			t.Errorf("members --json lacks %q: %s", field, b)
		}
	}
}

func TestPrintDomainStatus(t *testing.T) {
	var out bytes.Buffer
	printDomainStatus(&out, protocol.StatusResponse{})
	if out.Len() != 0 {
		t.Fatalf("a node that does not replicate printed %q", out.String())
	}
	printDomainStatus(&out, protocol.StatusResponse{
		Members: 3, Successor: "00000000000000b2", EntriesSent: 5,
		Peers: []protocol.PeerStatus{{NodeID: "00000000000000b2", Addr: "10.0.0.2:7700", Behind: 7, Heard: true}, {NodeID: "00000000000000c3", Unresponsive: true}},
	})
	for _, want := range []string{"members:  3 alive", "successor 00000000000000b2", "at most 7 entries", "behind 7\n", "not-heard unresponsive"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
