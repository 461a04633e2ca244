package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := Config{Domain: "east", NodeID: "00000000000000a1", ProtoAddr: "10.0.0.1:7700"}
	with := func(f func(*Config)) Config {
		c := valid
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; nil means valid
	}{
		{"required fields only", valid, nil},
		{"full", with(func(c *Config) {
			c.BindAddr, c.AdvertiseAddr, c.Role = "0.0.0.0:0", "192.0.2.7", "relay"
			c.ProbeInterval, c.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
		}), nil},
		{"ipv6 bind", with(func(c *Config) { c.BindAddr = "[::1]:7946" }), nil},
		{"zero", Config{}, []string{"Domain", "NodeID", "ProtoAddr"}},
		{"host name bind", with(func(c *Config) { c.BindAddr = "localhost:7946" }), []string{"BindAddr", "IP"}},
		{"no port", with(func(c *Config) { c.BindAddr = "127.0.0.1" }), []string{"BindAddr"}},
		{"bad port", with(func(c *Config) { c.BindAddr = "127.0.0.1:70000" }), []string{"BindAddr", "port"}},
		{"advertise with port", with(func(c *Config) { c.AdvertiseAddr = "10.0.0.1:7946" }), []string{"AdvertiseAddr"}},
		{"long domain", with(func(c *Config) { c.Domain = strings.Repeat("d", MaxDomainLen+1) }), []string{"Domain"}},
		{"longest domain", with(func(c *Config) { c.Domain = strings.Repeat("d", MaxDomainLen) }), nil},
		{"short id", with(func(c *Config) { c.NodeID = "a1" }), []string{"NodeID"}},
		{"non-hex id", with(func(c *Config) { c.NodeID = "zzzzzzzzzzzzzzzz" }), []string{"NodeID"}},
		{"proto addr without port", with(func(c *Config) { c.ProtoAddr = "10.0.0.1" }), []string{"ProtoAddr"}},
		{"proto addr without host", with(func(c *Config) { c.ProtoAddr = ":7700" }), []string{"ProtoAddr"}},
		{"proto addr wildcard", with(func(c *Config) { c.ProtoAddr = "0.0.0.0:7700" }), []string{"ProtoAddr", "wildcard"}},
		{"proto addr port 0", with(func(c *Config) { c.ProtoAddr = "10.0.0.1:0" }), []string{"ProtoAddr", "port"}},
		{"proto addr host name", with(func(c *Config) { c.ProtoAddr = "db1.example:7700" }), nil},
		{"negative durations", with(func(c *Config) {
			c.GossipInterval, c.ReconnectTimeout = -time.Second, -time.Hour
		}), []string{"GossipInterval", "ReconnectTimeout"}},
		{"negative suspicion", with(func(c *Config) { c.SuspicionMult = -1 }), []string{"SuspicionMult"}},
		{"probe timeout past interval", with(func(c *Config) { c.ProbeTimeout = 2 * time.Second }), []string{"ProbeTimeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func TestDefaultConfigIsSerfLAN(t *testing.T) {
	d := DefaultConfig()
	if d.BindAddr != "127.0.0.1:7946" || d.Role != "node" {
		t.Fatalf("DefaultConfig addresses = %q, %q", d.BindAddr, d.Role)
	}
	// memberlist.DefaultLANConfig and serf.DefaultConfig as of serf v0.11.
	if d.ProbeInterval != time.Second || d.ProbeTimeout != 500*time.Millisecond ||
		d.GossipInterval != 200*time.Millisecond || d.SuspicionMult != 4 ||
		d.ReconnectTimeout != 24*time.Hour || d.TombstoneTimeout != 24*time.Hour {
		t.Fatalf("DefaultConfig timings = %+v", d)
	}
	if got := (Config{}).withDefaults(); got.ProbeInterval != d.ProbeInterval || got.StreamTimeout != d.StreamTimeout {
		t.Fatalf("zero config with defaults = %+v, want %+v", got, d)
	}
}
