package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upu/upu/protocol"
)

func scrape(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRespMetrics: Redis-protocol commands are counted by name, unknown
// ones under "unknown", and error replies in their own counter.
func TestRespMetrics(t *testing.T) {
	n := startRespNode(t, Config{HTTPAddr: "127.0.0.1:0"})
	rc := redisClient(t, n, 2)
	ctx := context.Background()
	for range 3 {
		if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(ctx, "nosuchcommand").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	if err := rc.Incr(ctx, "k").Err(); err == nil {
		t.Fatal("INCR of a string succeeded")
	}
	body := scrape(t, n)
	for _, want := range []string{
		`upu_resp_commands_total{cmd="set"} 3`,
		`upu_resp_commands_total{cmd="get"} 1`,
		`upu_resp_commands_total{cmd="unknown"} 1`,
		`upu_resp_commands_total{cmd="incr"} 1`,
		"upu_resp_errors_total 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDomainMetrics: a member exports its domain's size, its peers' lag
// and the replication counters.
func TestDomainMetrics(t *testing.T) {
	ctx := context.Background()
	a := startMember(t, Config{Domain: "dc-metrics", HTTPAddr: "127.0.0.1:0"})
	b := startMember(t, Config{Domain: "dc-metrics"}, a)
	ca, cb := newClient(t, a, protocol.RoleClient, ""), newClient(t, b, protocol.RoleClient, "")
	if _, err := cb.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a has b's write", func() bool { return valueOn(ca, "k") == "v" })
	var body string
	eventually(t, "domain metrics", func() bool {
		body = scrape(t, a)
		return strings.Contains(body, "upu_domain_members 2") &&
			strings.Contains(body, `upu_replication_peer_behind_entries{peer="`+b.ID().String()+`"} 0`) &&
			strings.Contains(body, `upu_replication_peer_lag_seconds{peer="`+b.ID().String()+`"} 0`) &&
			strings.Contains(body, "upu_replication_entries_applied_total 2") // b's write and b's context-token key
	})
	for _, want := range []string{
		"upu_replication_entries_sent_total", "upu_replication_send_errors_total 0",
		"upu_replication_digest_syncs_total 0", "upu_replication_resyncing 0",
		"upu_dead_records 0", `upu_tombstones_dropped_total{reason="stable"} 0`, `upu_tombstones_dropped_total{reason="horizon"} 0`,
		"upu_log_forced_trims_total 0",
		`upu_domain_members_by_state{state="alive"} 2`, `upu_domain_members_by_state{state="failed"} 0`,
		"upu_keys 1", "upu_store_bytes", "upu_disk_free_bytes", "upu_cascade_has_parent 0", "upu_cascade_relay 0",
		`upu_badger_level_tables{level="0"}`, `upu_badger_level_compaction_score{level="1"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDashboardMetricsExist: every metric the Grafana dashboard in deploy/
// queries is one a node of a domain exports.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	a := startMember(t, Config{Domain: "dc-dash", HTTPAddr: "127.0.0.1:0", RespAddr: "127.0.0.1:0"})
	b := startMember(t, Config{Domain: "dc-dash"}, a)
	ca := newClient(t, a, protocol.RoleClient, "")
	if _, err := ca.Set(context.Background(), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	eventually(t, b.ID().String()+" seen", func() bool { return strings.Contains(scrape(t, a), "upu_domain_members 2") })
	body := scrape(t, a)
	name := regexp.MustCompile(`\b(upu|go|process)_[a-z_]+`)
	// Series that exist only while something is wrong.
	whileWrong := map[string]bool{"upu_cascade_origin_lag_entries": true}
	var n int
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				n++
				// A histogram is queried by its _bucket series; a counter
				// or gauge by its own name.
				if !whileWrong[m] && !strings.Contains(body, "\n"+m+"{") && !strings.Contains(body, "\n"+m+" ") {
					t.Errorf("panel %q queries %s, which the node does not export", p.Title, m)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d metric names found in the dashboard", n)
	}
}
