package redis

import (
	"context"
	"crypto/subtle"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
)

// redisVersion is the redis release whose commands and replies the listener
// follows; clients read it from HELLO and INFO to pick features.
const redisVersion = "7.2.0"

func (c *conn) cmdPing(args [][]byte) {
	switch len(args) {
	case 1:
		c.wr.AppendSimpleString("PONG")
	case 2:
		c.wr.AppendBulk(args[1])
	default:
		c.fail(wrongArity("ping"))
	}
}

func (c *conn) cmdEcho(args [][]byte) { c.wr.AppendBulk(args[1]) }

func (c *conn) cmdQuit([][]byte) {
	c.wr.AppendOK()
	c.closed = true
}

func (c *conn) cmdSelect(args [][]byte) {
	db, ok := parseInt(args[1])
	switch {
	case !ok:
		c.fail(errNotInt)
	case db != 0:
		c.fail("ERR DB index is out of range")
	default:
		c.wr.AppendOK()
	}
}

// login checks a client's credentials: the client token is the password of
// the user "default", the only user. With no token configured any password
// will do, as for redis' default user with nopass.
func (c *conn) login(user, pass []byte) bool {
	token := c.s.cfg.ClientToken
	ok := (user == nil || string(user) == "default") &&
		(token == "" || subtle.ConstantTimeCompare([]byte(token), pass) == 1)
	if !ok {
		c.log.WithField(logging.FieldReqID, c.newID().String()).WithField(logging.FieldEvent, logging.EventBadToken).Warn("Redis-protocol authentication refused: bad user or token")
	}
	c.authed = c.authed || ok
	return ok
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// cmdAuth is AUTH password or AUTH user password.
func (c *conn) cmdAuth(args [][]byte) {
	var user, pass []byte
	switch len(args) {
	case 2:
		pass = args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		c.fail(errSyntax)
		return
	}
	switch {
	case user == nil && c.s.cfg.ClientToken == "":
		c.fail("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case !c.login(user, pass):
		c.fail(errWrongPass)
	default:
		c.wr.AppendOK()
	}
}

// cmdHello is HELLO [protover [AUTH user pass] [SETNAME name]].
func (c *conn) cmdHello(args [][]byte) {
	resp3 := c.wr.RESP3()
	if len(args) > 1 {
		v, ok := parseInt(args[1])
		switch {
		case !ok:
			c.fail("ERR Protocol version is not an integer or out of range")
			return
		case v != 2 && v != 3:
			c.fail("NOPROTO unsupported protocol version")
			return
		}
		resp3 = v == 3
	}
	var user, pass, name []byte
	for i := 2; i < len(args); i++ {
		switch {
		case is(args[i], "AUTH") && i+2 < len(args):
			user, pass = args[i+1], args[i+2]
			i += 2
		case is(args[i], "SETNAME") && i+1 < len(args):
			name = args[i+1]
			if !validClientName(name) {
				c.fail(errClientName)
				return
			}
			i++
		default:
			c.fail("ERR Syntax error in HELLO option '" + string(cut(args[i], 128)) + "'")
			return
		}
	}
	if pass != nil && !c.login(user, pass) {
		c.fail(errWrongPass)
		return
	}
	if !c.authed {
		c.fail("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil {
		c.name = string(name)
	}
	c.wr.SetRESP3(resp3)
	proto := int64(2)
	if resp3 {
		proto = 3
	}
	c.wr.AppendMap(7)
	c.wr.AppendBulkString("server")
	c.wr.AppendBulkString("upu")
	c.wr.AppendBulkString("version")
	c.wr.AppendBulkString(redisVersion)
	c.wr.AppendBulkString("proto")
	c.wr.AppendInt(proto)
	c.wr.AppendBulkString("id")
	c.wr.AppendInt(c.id)
	c.wr.AppendBulkString("mode")
	c.wr.AppendBulkString("standalone")
	c.wr.AppendBulkString("role")
	c.wr.AppendBulkString("master")
	c.wr.AppendBulkString("modules")
	c.wr.AppendArray(0)
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// validClientName is redis' rule: printable ASCII without spaces.
func validClientName(name []byte) bool {
	for _, b := range name {
		if b < '!' || b > '~' {
			return false
		}
	}
	return true
}

// cmdClient is CLIENT ID|SETNAME|GETNAME|SETINFO|INFO|SCOPE.
func (c *conn) cmdClient(args [][]byte) {
	sub := args[1]
	arity := func(n int, name string) bool {
		if len(args) != n {
			c.fail(wrongArity("client|" + name))
			return false
		}
		return true
	}
	switch {
	case is(sub, "ID"):
		if arity(2, "id") {
			c.wr.AppendInt(c.id)
		}
	case is(sub, "SETNAME"):
		if !arity(3, "setname") {
			return
		}
		if !validClientName(args[2]) {
			c.fail(errClientName)
			return
		}
		c.name = string(args[2])
		c.wr.AppendOK()
	case is(sub, "GETNAME"):
		if !arity(2, "getname") {
			return
		}
		if c.name == "" {
			c.wr.AppendNull()
			return
		}
		c.wr.AppendBulkString(c.name)
	case is(sub, "SETINFO"):
		if !arity(4, "setinfo") {
			return
		}
		switch v := string(args[3]); {
		case !validClientName(args[3]):
			c.fail("ERR " + string(cut(args[2], 128)) + " cannot contain spaces, newlines or special characters.")
			return
		case is(args[2], "LIB-NAME"):
			c.libName = v
		case is(args[2], "LIB-VER"):
			c.libVer = v
		default:
			c.fail("ERR Unrecognized option '" + string(cut(args[2], 128)) + "'")
			return
		}
		c.wr.AppendOK()
	case is(sub, "INFO"):
		if arity(2, "info") {
			c.wr.AppendVerbatim("txt", []byte(c.info()))
		}
	case is(sub, "SCOPE"):
		c.clientScope(args)
	default:
		c.fail(unknownSubcommand(sub, "CLIENT"))
	}
}

// scopeNames are CLIENT SCOPE's words for kv's scopes.
var scopeNames = [...]string{kv.ScopeLocal: "local", kv.ScopeUp: "up", kv.ScopeRoot: "root"}

// clientScope is CLIENT SCOPE [LOCAL|UP|ROOT], UPU's own: how far the
// connection's reads look, or with no argument the scope now.
func (c *conn) clientScope(args [][]byte) {
	switch len(args) {
	case 2:
		c.wr.AppendBulkString(scopeNames[c.scope])
		return
	case 3:
	default:
		c.fail(wrongArity("client|scope"))
		return
	}
	for s, name := range scopeNames {
		if is(args[2], name) {
			c.scope = kv.Scope(s)
			c.wr.AppendOK()
			return
		}
	}
	c.fail(errSyntax)
}

// info is the connection's CLIENT INFO line.
func (c *conn) info() string {
	proto := "2"
	if c.wr.RESP3() {
		proto = "3"
	}
	return "id=" + strconv.FormatInt(c.id, 10) +
		" addr=" + c.nc.RemoteAddr().String() +
		" laddr=" + c.nc.LocalAddr().String() +
		" name=" + c.name +
		" age=" + strconv.FormatInt(int64(time.Since(c.created).Seconds()), 10) +
		" idle=0 flags=N db=0 cmd=client|info user=default" +
		" lib-name=" + c.libName + " lib-ver=" + c.libVer +
		" resp=" + proto + "\n"
}

// cmdCommand is COMMAND [COUNT|INFO [name...]|DOCS [name...]|LIST]:
// enough for clients that probe the command table.
func (c *conn) cmdCommand(args [][]byte) {
	t := c.s.cmds
	if len(args) == 1 {
		c.wr.AppendArray(len(t.sorted))
		for _, cmd := range t.sorted {
			c.commandInfo(cmd)
		}
		return
	}
	switch sub := args[1]; {
	case is(sub, "COUNT"):
		c.wr.AppendInt(int64(len(t.sorted)))
	case is(sub, "LIST"):
		c.wr.AppendArray(len(t.sorted))
		for _, cmd := range t.sorted {
			c.wr.AppendBulkString(cmd.name)
		}
	case is(sub, "INFO"):
		if len(args) == 2 {
			c.cmdCommand(args[:1])
			return
		}
		c.wr.AppendArray(len(args) - 2)
		for _, name := range args[2:] {
			if cmd := t.lookup(name, &c.lower); cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.wr.AppendNullArray()
			}
		}
	case is(sub, "DOCS"):
		// No documentation: clients (redis-cli) fall back on their own.
		c.wr.AppendMap(0)
	default:
		c.fail(unknownSubcommand(sub, "COMMAND"))
	}
}

// commandInfo appends redis 7's ten-element COMMAND INFO entry; tips, key
// specifications and subcommands are left empty.
func (c *conn) commandInfo(cmd *command) {
	c.wr.AppendArray(10)
	c.wr.AppendBulkString(cmd.name)
	c.wr.AppendInt(int64(cmd.arity))
	c.wr.AppendSet(len(cmd.flags))
	for _, f := range cmd.flags {
		c.wr.AppendSimpleString(f)
	}
	c.wr.AppendInt(int64(cmd.firstKey))
	c.wr.AppendInt(int64(cmd.lastKey))
	c.wr.AppendInt(int64(cmd.keyStep))
	c.wr.AppendSet(len(cmd.acl))
	for _, a := range cmd.acl {
		c.wr.AppendSimpleString(a)
	}
	c.wr.AppendSet(0)
	c.wr.AppendArray(0)
	c.wr.AppendArray(0)
}

// cmdConfig is CONFIG GET pattern... (what can be answered), and
// RESETSTAT. UPU is configured by upu serve's flags, not CONFIG SET.
func (c *conn) cmdConfig(args [][]byte) {
	switch sub := args[1]; {
	case is(sub, "GET"):
		if len(args) < 3 {
			c.fail(wrongArity("config|get"))
			return
		}
		params := c.configParams()
		var match []string
		for i := 0; i < len(params); i += 2 {
			for _, p := range args[2:] {
				if globMatch(bytesLower(p), []byte(params[i])) {
					match = append(match, params[i], params[i+1])
					break
				}
			}
		}
		c.wr.AppendMap(len(match) / 2)
		for _, s := range match {
			c.wr.AppendBulkString(s)
		}
	case is(sub, "SET"):
		c.fail("ERR CONFIG SET is not supported: UPU is configured with upu serve flags")
	case is(sub, "RESETSTAT"):
		c.wr.AppendOK()
	default:
		c.fail(unknownSubcommand(sub, "CONFIG"))
	}
}

func bytesLower(b []byte) []byte { return []byte(strings.ToLower(string(b))) }

// configParams lists what CONFIG GET answers, name then value, in the terms
// of redis' parameters.
func (c *conn) configParams() []string {
	info := c.s.node.Info()
	fsync := "everysec"
	if info.SyncWrites {
		fsync = "always"
	}
	host, port, _ := net.SplitHostPort(c.s.Addr().String())
	return []string{
		"appendfsync", fsync,
		"appendonly", "yes",
		"bind", host,
		"cluster-enabled", "no",
		"databases", "1",
		"dir", info.DataDir,
		"maxclients", strconv.Itoa(c.s.cfg.MaxConns),
		"maxmemory", "0",
		"maxmemory-policy", "noeviction",
		"port", port,
		"proto-max-bulk-len", strconv.Itoa(c.s.readCfg.MaxBulkLen),
		"save", "",
		"timeout", strconv.FormatInt(int64(c.s.cfg.IdleTimeout/time.Second), 10),
	}
}

// cmdDBSize counts the keys with a visible value on this replica.
func (c *conn) cmdDBSize([][]byte) {
	keys, _, err := c.keyspace()
	if err != nil {
		c.readFail("dbsize", err)
		return
	}
	c.wr.AppendInt(int64(keys))
}

// keyspace scans the store: keys with a visible value, and how many of them
// expire.
func (c *conn) keyspace() (keys, expires int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	err = c.s.kv.Scan(ctx, nil, 0, func(_ []byte, v crdt.View) bool {
		if v.Found {
			keys++
			if v.Expiry != 0 {
				expires++
			}
		}
		return true
	})
	return keys, expires, err
}

// cmdInfo is INFO [section...]; the default is every section.
func (c *conn) cmdInfo(args [][]byte) {
	sections := [...]string{"server", "clients", "memory", "persistence", "stats", "replication", "keyspace", "upu"}
	want := make(map[string]bool)
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var b strings.Builder
	line := func(k string, v any) {
		b.WriteString(k)
		b.WriteByte(':')
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case int:
			b.WriteString(strconv.Itoa(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case uint64:
			b.WriteString(strconv.FormatUint(v, 10))
		}
		b.WriteString("\r\n")
	}
	n := c.s.node.Info()
	for _, sec := range sections {
		if !all && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(sec[:1]) + sec[1:] + "\r\n")
		switch sec {
		case "server":
			uptime := int64(time.Since(n.Started).Seconds())
			_, port, _ := net.SplitHostPort(c.s.Addr().String())
			line("redis_version", redisVersion)
			line("upu_version", n.Version)
			line("redis_mode", "standalone")
			line("os", runtime.GOOS)
			line("arch_bits", strconv.Itoa(strconv.IntSize))
			line("go_version", runtime.Version())
			line("process_id", os.Getpid())
			line("run_id", n.NodeID)
			line("tcp_port", port)
			line("uptime_in_seconds", uptime)
			line("uptime_in_days", uptime/86400)
		case "clients":
			line("connected_clients", c.s.Open())
			line("maxclients", c.s.cfg.MaxConns)
			line("native_protocol_clients", n.NativeClients)
		case "memory":
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			line("used_memory", int64(m.HeapAlloc))
			line("used_memory_rss", int64(m.Sys))
			line("maxmemory", 0)
			line("maxmemory_policy", "noeviction")
		case "persistence":
			line("loading", 0)
			line("aof_enabled", 1)
			line("rdb_changes_since_last_save", 0)
		case "stats":
			line("total_connections_received", c.s.loop.Accepted())
			line("total_commands_processed", c.s.processed.Load())
			line("rejected_connections", c.s.loop.Rejected())
		case "replication":
			line("role", "master")
			line("connected_slaves", 0)
		case "keyspace":
			keys, expires, err := c.keyspace()
			if err != nil {
				c.readFail("info", err)
				return
			}
			if keys > 0 {
				line("db0", "keys="+strconv.Itoa(keys)+",expires="+strconv.Itoa(expires)+",avg_ttl=0")
			}
		case "upu":
			line("node_id", n.NodeID)
			line("domain", n.Domain)
			line("addr", n.Addr)
			members := "1"
			if n.Members > 0 {
				members = strconv.FormatInt(n.Members, 10)
			}
			line("members", members)
			successor := n.Successor
			if successor == "" {
				successor = "none (no other member)"
			}
			line("successor", successor)
			line("repl_entries_sent", n.EntriesSent)
			line("repl_entries_applied", n.EntriesApplied)
			cascade := n.Cascade
			if cascade == "" {
				cascade = "none (no parent domain)"
			}
			line("cascade", cascade)
			line("log_entries", n.LogEntries)
			line("applied", n.Applied)
			line("sync_writes", strconv.FormatBool(n.SyncWrites))
		}
	}
	c.wr.AppendVerbatim("txt", []byte(b.String()))
}
