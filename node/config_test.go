package node

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// TestValidateNamesEveryProblem: Validate reports each problem once, the
// node's own fields and the subsystems' alike, by flag name where a flag
// sets the field and by path in Config where none does.
func TestValidateNamesEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // field names, in order
	}{
		{"defaults", Config{}, nil},
		{"the default config", DefaultConfig(), nil},
		{"node fields", Config{Addr: "nowhere", MaxConns: -1}, []string{"addr", "max-conns"}},
		{"store fields by flag", Config{Store: store.Config{MaxKeySize: store.MaxKeySizeLimit + 1, TombstoneHorizon: -time.Second}},
			[]string{"tombstone-horizon", "max-key-size"}},
		{"a value over the protocol's bound", Config{Store: store.Config{MaxValueSize: kv.MaxValueSizeLimit + 1}}, []string{"max-value-size"}},
		{"store field without a flag", Config{Store: store.Config{MemTableSize: 1}}, []string{"store.MemTableSize"}},
		{"gossip tuning", Config{Gossip: gossip.Config{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second}},
			[]string{"gossip.ProbeTimeout"}},
		{"gossip tuning ignored standalone", Config{Standalone: true, Gossip: gossip.Config{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second}}, nil},
		{"peer tuning", Config{Peer: peer.Config{DialTimeout: -time.Second}}, []string{"peer.DialTimeout"}},
		{"replication tuning", Config{Replication: replication.Config{DigestBits: 40, InboxSize: -1}},
			[]string{"replication.InboxSize", "replication.DigestBits"}},
		{"a bad gossip address once", Config{Gossip: gossip.Config{BindAddr: "localhost"}}, []string{"gossip-addr"}},
		{"log", Config{Log: logging.Config{Level: "loud"}}, []string{"log-level"}},
		{"all at once", Config{MaxConns: -1, Store: store.Config{MaxValueSize: -1}, Replication: replication.Config{SendQueue: -1}, Log: logging.Config{Format: "xml"}},
			[]string{"max-conns", "max-value-size", "log-format", "replication.SendQueue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []string
			for _, fe := range confcheck.Fields(err) {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Validate names %v, want %v (error: %v)", got, tt.want, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, does not wrap ErrConfig", err)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tt.want) {
				t.Fatalf("Validate gave %d lines for %d problems: %q", len(lines), len(tt.want), err)
			}
		})
	}
}
