package redis

import (
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestRespRedisTools runs the real redis-cli and redis-benchmark against
// the listener. CI machines may lack them: `task test:redis` installs
// redis-tools first.
func TestRespRedisTools(t *testing.T) {
	cli, err1 := exec.LookPath("redis-cli")
	bench, err2 := exec.LookPath("redis-benchmark")
	if err1 != nil || err2 != nil {
		t.Skip("redis-cli or redis-benchmark not installed: apt-get install redis-tools (or run `task test:redis`)")
	}
	n := startServer(t, options{}, nil)
	host, port, _ := net.SplitHostPort(n.RespAddr().String())
	ctx := ctxT(t)
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "greeting", "hello world"}, "OK\n"},
		{[]string{"GET", "greeting"}, "hello world\n"},
		{[]string{"INCR", "visits"}, "1\n"},
		{[]string{"INCRBY", "visits", "41"}, "42\n"},
		{[]string{"GET", "visits"}, "42\n"},
		{[]string{"SET", "session", "x", "EX", "100"}, "OK\n"},
		{[]string{"TTL", "session"}, "100\n"},
		{[]string{"TTL", "greeting"}, "-1\n"},
		{[]string{"-3", "GET", "greeting"}, "hello world\n"},
		{[]string{"--scan", "--pattern", "g*"}, "greeting\n"},
		{[]string{"DBSIZE"}, "3\n"},
		{[]string{"GET", "nope"}, "\n"},
		{[]string{"FOO"}, "ERR unknown command 'FOO', with args beginning with: \n\n"},
	} {
		if got := run(cli, tt.args...); got != tt.want {
			t.Errorf("redis-cli %q: got %q, want %q", tt.args, got, tt.want)
		}
	}

	out := run(bench, "-t", "set,get,incr", "-n", "2000", "-q")
	for _, want := range []string{"SET:", "GET:", "INCR:"} {
		if !strings.Contains(out, want) {
			t.Errorf("redis-benchmark printed no %s line:\n%s", want, out)
		}
	}
	if lower := strings.ToLower(out); strings.Contains(lower, "err") || strings.Contains(lower, "warning") {
		t.Errorf("redis-benchmark reported a problem:\n%s", out)
	}
	// What redis-benchmark wrote is there: INCR counted every request.
	if got := run(cli, "GET", "counter:__rand_int__"); got != "2000\n" {
		t.Errorf("counter after redis-benchmark: %q", got)
	}
}
