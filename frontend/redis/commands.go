package redis

import (
	"bytes"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/kv"
)

// maxCommandName bounds the command names looked up; longer ones are
// unknown.
const maxCommandName = 32

// command is one command of the Redis listener, with what COMMAND INFO
// reports of it.
type command struct {
	name  string // lower case, as redis names it in errors
	arity int    // redis' convention: n exactly n arguments, -n at least n (the name counts)
	flags []string
	acl   []string
	// Key positions: first, last (negative: from the end) and step.
	firstKey, lastKey, keyStep int
	// queues is set on commands that only queue writes: they do not apply
	// the writes queued before them, so that a pipeline of writes reaches
	// the store as one batch.
	queues bool
	noAuth bool // allowed before AUTH
	run    func(c *conn, args [][]byte)
	calls  prometheus.Counter // resolved once: the hot path only adds
}

// commands is the command table, built once per listener.
type commands struct {
	byName  map[string]*command
	sorted  []*command // by name, for COMMAND
	unknown prometheus.Counter
}

// newCommands builds the table, counting calls in calls (a counter per
// command name).
func newCommands(calls *prometheus.CounterVec) *commands {
	const (
		write    = "write"
		readonly = "readonly"
		fast     = "fast"
		denyoom  = "denyoom"
	)
	strW := []string{"@write", "@string", "@fast"}
	strR := []string{"@read", "@string", "@fast"}
	keyW := []string{"@keyspace", "@write", "@fast"}
	keyR := []string{"@keyspace", "@read", "@fast"}
	connACL := []string{"@fast", "@connection"}
	cmds := []*command{
		// Keys and values.
		{name: "get", arity: 2, flags: []string{readonly, fast}, acl: strR, firstKey: 1, lastKey: 1, keyStep: 1, run: (*conn).cmdGet},
		{name: "set", arity: -3, flags: []string{write, denyoom}, acl: []string{"@write", "@string", "@slow"}, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdSet},
		{name: "setex", arity: 4, flags: []string{write, denyoom}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdSetex},
		{name: "psetex", arity: 4, flags: []string{write, denyoom}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdSetex},
		{name: "setnx", arity: 3, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdSetnx},
		{name: "getdel", arity: 2, flags: []string{write, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdGetdel},
		{name: "getex", arity: -2, flags: []string{write, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdGetex},
		{name: "mget", arity: -2, flags: []string{readonly, fast}, acl: strR, firstKey: 1, lastKey: -1, keyStep: 1, run: (*conn).cmdMget},
		{name: "mset", arity: -3, flags: []string{write, denyoom}, acl: []string{"@write", "@string", "@slow"}, firstKey: 1, lastKey: -1, keyStep: 2, queues: true, run: (*conn).cmdMset},
		{name: "del", arity: -2, flags: []string{write}, acl: []string{"@keyspace", "@write", "@slow"}, firstKey: 1, lastKey: -1, keyStep: 1, queues: true, run: (*conn).cmdDel},
		{name: "unlink", arity: -2, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: -1, keyStep: 1, queues: true, run: (*conn).cmdDel},
		{name: "exists", arity: -2, flags: []string{readonly, fast}, acl: keyR, firstKey: 1, lastKey: -1, keyStep: 1, run: (*conn).cmdExists},
		{name: "type", arity: 2, flags: []string{readonly, fast}, acl: keyR, firstKey: 1, lastKey: 1, keyStep: 1, run: (*conn).cmdType},
		{name: "expire", arity: -3, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdExpire},
		{name: "pexpire", arity: -3, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdExpire},
		{name: "expireat", arity: -3, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdExpire},
		{name: "pexpireat", arity: -3, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdExpire},
		{name: "persist", arity: 2, flags: []string{write, fast}, acl: keyW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdPersist},
		{name: "ttl", arity: 2, flags: []string{readonly, fast}, acl: keyR, firstKey: 1, lastKey: 1, keyStep: 1, run: (*conn).cmdTTL},
		{name: "pttl", arity: 2, flags: []string{readonly, fast}, acl: keyR, firstKey: 1, lastKey: 1, keyStep: 1, run: (*conn).cmdTTL},
		{name: "scan", arity: -2, flags: []string{readonly}, acl: []string{"@keyspace", "@read", "@slow"}, run: (*conn).cmdScan},
		{name: "incr", arity: 2, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdIncr},
		{name: "decr", arity: 2, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdIncr},
		{name: "incrby", arity: 3, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdIncr},
		{name: "decrby", arity: 3, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdIncr},
		{name: "strlen", arity: 2, flags: []string{readonly, fast}, acl: strR, firstKey: 1, lastKey: 1, keyStep: 1, run: (*conn).cmdStrlen},
		{name: "append", arity: 3, flags: []string{write, denyoom, fast}, acl: strW, firstKey: 1, lastKey: 1, keyStep: 1, queues: true, run: (*conn).cmdAppend},
		{name: "dbsize", arity: 1, flags: []string{readonly, fast}, acl: keyR, run: (*conn).cmdDBSize},

		// Connection and server.
		{name: "ping", arity: -1, flags: []string{fast}, acl: connACL, run: (*conn).cmdPing},
		{name: "echo", arity: 2, flags: []string{fast}, acl: connACL, run: (*conn).cmdEcho},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", fast, "no_auth"}, acl: connACL, noAuth: true, run: (*conn).cmdHello},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", fast, "no_auth"}, acl: connACL, noAuth: true, run: (*conn).cmdAuth},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", fast, "no_auth"}, acl: connACL, noAuth: true, run: (*conn).cmdQuit},
		{name: "select", arity: 2, flags: []string{"loading", "stale", fast}, acl: connACL, run: (*conn).cmdSelect},
		{name: "client", arity: -2, acl: []string{"@slow", "@connection"}, run: (*conn).cmdClient},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@connection"}, run: (*conn).cmdCommand},
		{name: "config", arity: -2, acl: []string{"@admin", "@slow"}, run: (*conn).cmdConfig},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@dangerous"}, run: (*conn).cmdInfo},
	}
	t := &commands{byName: make(map[string]*command, len(cmds)), sorted: cmds, unknown: calls.WithLabelValues("unknown")}
	for _, c := range cmds {
		c.calls = calls.WithLabelValues(c.name)
		t.byName[c.name] = c
	}
	return t
}

// lookup finds a command by name, in any case, lower-casing it into buf so
// that the map lookup does not allocate.
func (t *commands) lookup(name []byte, buf *[maxCommandName]byte) *command {
	if len(name) > len(buf) {
		return nil
	}
	for i, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		buf[i] = b
	}
	return t.byName[string(buf[:len(name)])]
}

// Error texts, as redis words them.
const (
	errSyntax    = "ERR syntax error"
	errNotInt    = "ERR value is not an integer or out of range"
	errEmptyKey  = "ERR empty keys are not supported"
	errBadCursor = "ERR invalid cursor"
)

// unknownCommand is redis' reply to a command it does not know: the name
// and the start of the arguments, each cut at 128 bytes.
func unknownCommand(args [][]byte) string {
	b := append([]byte("ERR unknown command '"), cut(args[0], 128)...)
	b = append(b, "', with args beginning with: "...)
	n := 0
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		a = cut(a, 128-n)
		b = append(append(append(b, '\''), a...), '\'', ' ')
		n += len(a) + 3
	}
	return string(b)
}

func cut(b []byte, n int) []byte { return b[:min(len(b), n)] }

func wrongArity(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

func unknownSubcommand(sub []byte, cmd string) string {
	return "ERR unknown subcommand '" + string(cut(sub, 128)) + "'. Try " + cmd + " HELP."
}

// parseInt parses a decimal int64 the way redis' string2ll does: an
// optional minus sign, no plus sign, spaces or leading zeros.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || digits[0] == '0' && (len(digits) > 1 || neg) {
		return 0, false
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), true // -(1<<63) wraps to itself: MinInt64
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

func is(arg []byte, word string) bool { return bytes.EqualFold(arg, []byte(word)) }

// expireArg turns an expire argument into an absolute Unix ms time, or
// answers "invalid expire time" and returns false. unit is 1000 for
// seconds, 1 for ms; relative adds now. Like redis, it refuses values whose
// conversion overflows, and (when positive is set, as for SET) values <= 0.
func (c *conn) expireArg(arg []byte, unit int64, relative, positive bool, name string) (int64, bool) {
	v, ok := parseInt(arg)
	if !ok {
		c.fail(errNotInt)
		return 0, false
	}
	invalid := "ERR invalid expire time in '" + name + "' command"
	if positive && v <= 0 || v > math.MaxInt64/unit || v < math.MinInt64/unit {
		c.fail(invalid)
		return 0, false
	}
	v *= unit
	if relative {
		now := c.nowMS()
		if v > math.MaxInt64-now {
			c.fail(invalid)
			return 0, false
		}
		v += now
	}
	return v, true
}

// expireOption parses EX s, PX ms, EXAT s or PXAT ms at args[i]; n is how
// many arguments it took (0: not one of them).
func (c *conn) expireOption(args [][]byte, i int, name string) (expiry int64, n int, ok bool) {
	var unit int64
	relative := false
	switch a := args[i]; {
	case is(a, "EX"):
		unit, relative = 1000, true
	case is(a, "PX"):
		unit, relative = 1, true
	case is(a, "EXAT"):
		unit = 1000
	case is(a, "PXAT"):
		unit = 1
	default:
		return 0, 0, true
	}
	if i+1 >= len(args) {
		c.fail(errSyntax)
		return 0, 0, false
	}
	expiry, ok = c.expireArg(args[i+1], unit, relative, true, name)
	return expiry, 2, ok
}

func (c *conn) cmdGet(args [][]byte) {
	v, err := c.read("get", args[1])
	switch {
	case err != nil:
		c.readFail("get", err)
	case !v.Found:
		c.wr.AppendNull()
	default:
		c.wr.AppendBulk(v.Value)
	}
}

// cmdSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
func (c *conn) cmdSet(args [][]byte) {
	w := kv.Write{Op: kv.OpSet, Key: args[1], Value: args[2]}
	expiring := false
	for i := 3; i < len(args); i++ {
		a := args[i]
		switch {
		case is(a, "NX") && w.Cond != kv.CondPresent:
			w.Cond = kv.CondAbsent
		case is(a, "XX") && w.Cond != kv.CondAbsent:
			w.Cond = kv.CondPresent
		case is(a, "GET"):
			w.WantOld = true
		case is(a, "KEEPTTL") && !expiring:
			w.KeepTTL = true
		case !w.KeepTTL && !expiring:
			expiry, n, ok := c.expireOption(args, i, "set")
			if !ok {
				return
			}
			if n == 0 {
				c.fail(errSyntax)
				return
			}
			w.Expiry, expiring = expiry, true
			i += n - 1
		default:
			c.fail(errSyntax)
			return
		}
	}
	reply := replyOK
	switch {
	case w.WantOld:
		reply = replyOld
	case w.Cond != kv.CondNone:
		reply = replyOKOrNull
	}
	c.write("set", reply, w)
}

// cmdSetex is SETEX key seconds value and PSETEX key ms value.
func (c *conn) cmdSetex(args [][]byte) {
	name, unit := "setex", int64(1000)
	if is(args[0], "PSETEX") {
		name, unit = "psetex", 1
	}
	expiry, ok := c.expireArg(args[2], unit, true, true, name)
	if !ok {
		return
	}
	c.write(name, replyOK, kv.Write{Op: kv.OpSet, Key: args[1], Value: args[3], Expiry: expiry})
}

func (c *conn) cmdSetnx(args [][]byte) {
	c.write("setnx", replyCount, kv.Write{Op: kv.OpSet, Key: args[1], Value: args[2], Cond: kv.CondAbsent})
}

func (c *conn) cmdGetdel(args [][]byte) {
	c.write("getdel", replyOld, kv.Write{Op: kv.OpDel, Key: args[1], Cond: kv.CondPresent, WantOld: true})
}

// cmdGetex is GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]. Without an
// option it is a read.
func (c *conn) cmdGetex(args [][]byte) {
	w := kv.Write{Op: kv.OpExpire, Key: args[1], WantOld: true}
	set := false
	for i := 2; i < len(args); i++ {
		if set {
			c.fail(errSyntax)
			return
		}
		set = true
		if is(args[i], "PERSIST") {
			w.Cond = kv.CondHasExpiry
			continue
		}
		expiry, n, ok := c.expireOption(args, i, "getex")
		if !ok {
			return
		}
		if n == 0 {
			c.fail(errSyntax)
			return
		}
		w.Expiry = expiry
		i += n - 1
	}
	if !set {
		c.flushWrites()
		c.cmdGet(args)
		return
	}
	c.write("getex", replyOld, w)
}

func (c *conn) cmdMget(args [][]byte) {
	c.wr.AppendArray(len(args) - 1)
	for _, key := range args[1:] {
		v, err := c.read("mget", key)
		switch {
		case err != nil:
			// Mid-array an error reply would be an element; redis itself
			// never fails here, so a failed read is a null.
			c.errorText(err, nil, "mget", c.readID)
			c.wr.AppendNull()
		case !v.Found:
			c.wr.AppendNull()
		default:
			c.wr.AppendBulk(v.Value)
		}
	}
}

func (c *conn) cmdMset(args [][]byte) {
	if len(args)%2 == 0 {
		c.fail(wrongArity("mset"))
		return
	}
	// All or nothing: every pair is checked before any is queued.
	for i := 1; i < len(args); i += 2 {
		err := c.s.kv.CheckKey(args[i])
		if err == nil {
			err = c.s.kv.CheckValue(args[i+1])
		}
		if err != nil {
			c.fail(c.errorText(err, args[i], "mset", reqid.ID{}))
			return
		}
	}
	rid := c.newID()
	ridText := rid.String()
	n := 0
	for i := 1; i < len(args); i += 2 {
		if c.batch.Add(kv.Write{Op: kv.OpSet, Key: args[i], Value: args[i+1], ReqID: ridText}) == nil {
			n++
		}
	}
	c.pending = append(c.pending, pendingReply{reply: replyOK, n: n, name: "mset", rid: rid})
}

// cmdDel is DEL and UNLINK: each key that shows a value gets a tombstone;
// the reply counts them.
func (c *conn) cmdDel(args [][]byte) {
	name := "del"
	if is(args[0], "UNLINK") {
		name = "unlink"
	}
	rid := c.newID()
	ridText := rid.String()
	n := 0
	for _, key := range args[1:] {
		// A key kv refuses cannot exist: there is nothing to delete.
		if c.batch.Add(kv.Write{Op: kv.OpDel, Key: key, Cond: kv.CondPresent, ReqID: ridText}) == nil {
			n++
		}
	}
	c.pending = append(c.pending, pendingReply{reply: replyCount, n: n, name: name, rid: rid})
}

func (c *conn) cmdExists(args [][]byte) {
	n := 0
	for _, key := range args[1:] {
		v, err := c.read("exists", key)
		if err != nil {
			c.readFail("exists", err)
			return
		}
		if v.Found {
			n++
		}
	}
	c.wr.AppendInt(int64(n))
}

func (c *conn) cmdType(args [][]byte) {
	v, err := c.read("type", args[1])
	switch {
	case err != nil:
		c.readFail("type", err)
	case v.Found:
		c.wr.AppendSimpleString("string")
	default:
		c.wr.AppendSimpleString("none")
	}
}

// cmdExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key time
// [NX|XX|GT|LT].
func (c *conn) cmdExpire(args [][]byte) {
	var (
		name     string
		unit     int64 = 1000
		relative       = true
	)
	switch {
	case is(args[0], "EXPIRE"):
		name = "expire"
	case is(args[0], "PEXPIRE"):
		name, unit = "pexpire", 1
	case is(args[0], "EXPIREAT"):
		name, relative = "expireat", false
	default:
		name, unit, relative = "pexpireat", 1, false
	}
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch {
		case is(a, "NX"):
			nx = true
		case is(a, "XX"):
			xx = true
		case is(a, "GT"):
			gt = true
		case is(a, "LT"):
			lt = true
		default:
			c.fail("ERR Unsupported option " + string(cut(a, 128)))
			return
		}
	}
	switch {
	case nx && (xx || gt || lt):
		c.fail("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	case gt && lt:
		c.fail("ERR GT and LT options at the same time are not compatible")
		return
	}
	expiry, ok := c.expireArg(args[2], unit, relative, false, name)
	if !ok {
		return
	}
	// The store takes expiry 0 for "none": a time at or before the epoch
	// is simply past, which deletes the key.
	w := kv.Write{Op: kv.OpExpire, Key: args[1], Expiry: max(expiry, 1)}
	switch {
	case nx:
		w.Cond = kv.CondNoExpiry
	case gt:
		w.Cond = kv.CondLaterExpiry // implies an expiry: XX adds nothing
	case lt && xx:
		w.Cond = kv.CondEarlierExpiry | kv.CondHasExpiry
	case lt:
		w.Cond = kv.CondEarlierExpiry
	case xx:
		w.Cond = kv.CondHasExpiry
	}
	c.write(name, replyCount, w)
}

func (c *conn) cmdPersist(args [][]byte) {
	c.write("persist", replyCount, kv.Write{Op: kv.OpExpire, Key: args[1], Cond: kv.CondHasExpiry})
}

// cmdTTL is TTL and PTTL: -2 when nothing is visible, -1 without expiry.
func (c *conn) cmdTTL(args [][]byte) {
	name, ms := "ttl", false
	if is(args[0], "PTTL") {
		name, ms = "pttl", true
	}
	v, err := c.read(name, args[1])
	switch {
	case err != nil:
		c.readFail(name, err)
	case !v.Found:
		c.wr.AppendInt(-2)
	case v.Expiry == 0:
		c.wr.AppendInt(-1)
	default:
		left := max(v.Expiry-c.nowMS(), 0)
		if !ms {
			left = (left + 500) / 1000
		}
		c.wr.AppendInt(left)
	}
}

// cmdIncr is INCR, DECR, INCRBY and DECRBY.
func (c *conn) cmdIncr(args [][]byte) {
	var (
		name  string
		delta int64 = 1
	)
	switch {
	case is(args[0], "INCR"):
		name = "incr"
	case is(args[0], "DECR"):
		name, delta = "decr", -1
	default:
		name = "incrby"
		d, ok := parseInt(args[2])
		if !ok {
			c.fail(errNotInt)
			return
		}
		delta = d
		if is(args[0], "DECRBY") {
			name = "decrby"
			if d == math.MinInt64 {
				c.fail("ERR decrement would overflow")
				return
			}
			delta = -d
		}
	}
	c.write(name, replyCounter, kv.Write{Op: kv.OpIncr, Key: args[1], Delta: delta})
}

func (c *conn) cmdStrlen(args [][]byte) {
	v, err := c.read("strlen", args[1])
	if err != nil {
		c.readFail("strlen", err)
		return
	}
	c.wr.AppendInt(int64(len(v.Value)))
}

func (c *conn) cmdAppend(args [][]byte) {
	c.write("append", replyCounter, kv.Write{Op: kv.OpAppend, Key: args[1], Value: args[2]})
}
