package redis

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/protocol"
)

// eq fails the test when got differs from want.
func eq[T any](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %#v, want %#v", what, got, want)
	}
}

func isNil(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("%s: err %v, want a null reply", what, err)
	}
}

func redisErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("%s: err %v, want %q", what, err, want)
	}
}

// TestRespStrings drives every key and value command through go-redis, in
// RESP2 and RESP3, against a node on a fake clock so that TTLs are exact.
func TestRespStrings(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", proto), func(t *testing.T) {
			clk := clock.NewFake(time.UnixMilli(1_700_000_000_000))
			n := startServer(t, options{}, clk)
			r := redisClient(t, n, proto, "")
			ctx := ctxT(t)

			// GET, SET and its options.
			_, err := r.Get(ctx, "k").Result()
			isNil(t, "GET missing", err)
			eq(t, "SET", r.Set(ctx, "k", "v1", 0).Val(), r.Set(ctx, "k", "v1", 0).Err(), "OK")
			s, err := r.Get(ctx, "k").Result()
			eq(t, "GET", s, err, "v1")
			_, err = r.SetArgs(ctx, "k", "v2", redis.SetArgs{Mode: "NX"}).Result()
			isNil(t, "SET NX on a key that exists", err)
			s, err = r.SetArgs(ctx, "new", "n", redis.SetArgs{Mode: "NX"}).Result()
			eq(t, "SET NX", s, err, "OK")
			_, err = r.SetArgs(ctx, "absent", "x", redis.SetArgs{Mode: "XX"}).Result()
			isNil(t, "SET XX on a missing key", err)
			s, err = r.SetArgs(ctx, "k", "v2", redis.SetArgs{Mode: "XX", Get: true}).Result()
			eq(t, "SET XX GET", s, err, "v1")
			_, err = r.SetArgs(ctx, "fresh", "f", redis.SetArgs{Get: true}).Result()
			isNil(t, "SET GET on a missing key", err)
			eq(t, "SET EX", r.Set(ctx, "ex", "e", 10*time.Second).Val(), nil, "OK")
			d, err := r.PTTL(ctx, "ex").Result()
			eq(t, "PTTL after SET EX", d, err, 10*time.Second)
			eq(t, "SET PX", r.Set(ctx, "px", "p", 1500*time.Millisecond).Val(), nil, "OK")
			d, err = r.TTL(ctx, "px").Result()
			eq(t, "TTL rounds", d, err, 2*time.Second)
			at := clk.Now().Add(time.Minute)
			eq(t, "SET EXAT", r.SetArgs(ctx, "exat", "a", redis.SetArgs{ExpireAt: at}).Val(), nil, "OK")
			d, err = r.TTL(ctx, "exat").Result()
			eq(t, "TTL after EXAT", d, err, time.Minute)
			eq(t, "SET PXAT", r.Do(ctx, "set", "pxat", "a", "pxat", at.UnixMilli()+1).Val(), nil, any("OK"))
			d, err = r.PTTL(ctx, "pxat").Result()
			eq(t, "PTTL after PXAT", d, err, time.Minute+time.Millisecond)
			eq(t, "SET KEEPTTL", r.SetArgs(ctx, "ex", "e2", redis.SetArgs{KeepTTL: true}).Val(), nil, "OK")
			d, err = r.PTTL(ctx, "ex").Result()
			eq(t, "PTTL after KEEPTTL", d, err, 10*time.Second)
			eq(t, "SET without KEEPTTL", r.Set(ctx, "ex", "e3", 0).Val(), nil, "OK")
			d, err = r.TTL(ctx, "ex").Result()
			eq(t, "TTL after a plain SET", d, err, time.Duration(-1))
			d, err = r.TTL(ctx, "nope").Result()
			eq(t, "TTL missing", d, err, time.Duration(-2))

			// SETEX, PSETEX, SETNX; expiry on the fake clock.
			eq(t, "SETEX", r.SetEx(ctx, "sx", "v", 5*time.Second).Val(), nil, "OK")
			eq(t, "PSETEX", r.Do(ctx, "psetex", "psx", 250, "v").Val(), nil, any("OK"))
			ok, err := r.SetNX(ctx, "sx", "other", 0).Result()
			eq(t, "SETNX existing", ok, err, false)
			ok, err = r.Do(ctx, "setnx", "snx", "v").Bool()
			eq(t, "SETNX", ok, err, true)
			clk.Advance(250 * time.Millisecond)
			_, err = r.Get(ctx, "psx").Result()
			isNil(t, "GET after PSETEX expired", err)
			s, err = r.Get(ctx, "sx").Result()
			eq(t, "GET before SETEX expires", s, err, "v")
			ok, err = r.SetNX(ctx, "psx", "again", 0).Result()
			eq(t, "SETNX on an expired key", ok, err, true)

			// GETDEL, GETEX.
			s, err = r.GetDel(ctx, "snx").Result()
			eq(t, "GETDEL", s, err, "v")
			_, err = r.GetDel(ctx, "snx").Result()
			isNil(t, "GETDEL again", err)
			s, err = r.GetEx(ctx, "k", 30*time.Second).Result()
			eq(t, "GETEX EX", s, err, "v2")
			d, err = r.TTL(ctx, "k").Result()
			eq(t, "TTL after GETEX", d, err, 30*time.Second)
			s, err = r.Do(ctx, "getex", "k", "persist").Text()
			eq(t, "GETEX PERSIST", s, err, "v2")
			d, err = r.TTL(ctx, "k").Result()
			eq(t, "TTL after GETEX PERSIST", d, err, time.Duration(-1))
			s, err = r.Do(ctx, "getex", "k").Text()
			eq(t, "GETEX without options", s, err, "v2")
			s, err = r.Do(ctx, "getex", "k", "pxat", 1).Text()
			eq(t, "GETEX PXAT in the past", s, err, "v2")
			_, err = r.Get(ctx, "k").Result()
			isNil(t, "GET after GETEX in the past", err)
			_, err = r.GetEx(ctx, "nope", time.Second).Result()
			isNil(t, "GETEX missing", err)

			// MSET, MGET, EXISTS, TYPE, DEL, UNLINK, DBSIZE.
			eq(t, "MSET", r.MSet(ctx, "a", "1", "b", "2", "c", "3").Val(), nil, "OK")
			vs, err := r.MGet(ctx, "a", "nope", "c").Result()
			eq(t, "MGET", vs, err, []any{"1", nil, "3"})
			cnt, err := r.Exists(ctx, "a", "b", "nope", "a").Result()
			eq(t, "EXISTS", cnt, err, int64(3))
			s, err = r.Type(ctx, "a").Result()
			eq(t, "TYPE", s, err, "string")
			s, err = r.Type(ctx, "nope").Result()
			eq(t, "TYPE missing", s, err, "none")
			cnt, err = r.Del(ctx, "a", "nope", "b").Result()
			eq(t, "DEL", cnt, err, int64(2))
			cnt, err = r.Unlink(ctx, "c", "c").Result()
			eq(t, "UNLINK", cnt, err, int64(1))
			cnt, err = r.DBSize(ctx).Result()
			// ex exat fresh new px pxat sx psx k? (k expired by GETEX PXAT)
			eq(t, "DBSIZE", cnt, err, int64(8))

			// EXPIRE and friends, with their options.
			r.Set(ctx, "e", "v", 0)
			ok, err = r.Expire(ctx, "e", 100*time.Second).Result()
			eq(t, "EXPIRE", ok, err, true)
			ok, err = r.ExpireNX(ctx, "e", 50*time.Second).Result()
			eq(t, "EXPIRE NX with an expiry", ok, err, false)
			ok, err = r.ExpireGT(ctx, "e", 50*time.Second).Result()
			eq(t, "EXPIRE GT earlier", ok, err, false)
			ok, err = r.ExpireLT(ctx, "e", 50*time.Second).Result()
			eq(t, "EXPIRE LT earlier", ok, err, true)
			ok, err = r.ExpireXX(ctx, "e", 60*time.Second).Result()
			eq(t, "EXPIRE XX", ok, err, true)
			ok, err = r.Do(ctx, "expire", "e", 70, "lt", "xx").Bool()
			eq(t, "EXPIRE LT XX later", ok, err, false)
			ok, err = r.PExpire(ctx, "e", 1500*time.Millisecond).Result()
			eq(t, "PEXPIRE", ok, err, true)
			d, err = r.PTTL(ctx, "e").Result()
			eq(t, "PTTL after PEXPIRE", d, err, 1500*time.Millisecond)
			ok, err = r.ExpireAt(ctx, "e", clk.Now().Add(time.Hour)).Result()
			eq(t, "EXPIREAT", ok, err, true)
			d, err = r.TTL(ctx, "e").Result()
			eq(t, "TTL after EXPIREAT", d, err, time.Hour)
			ok, err = r.PExpireAt(ctx, "e", clk.Now().Add(2*time.Second)).Result()
			eq(t, "PEXPIREAT", ok, err, true)
			ok, err = r.Persist(ctx, "e").Result()
			eq(t, "PERSIST", ok, err, true)
			ok, err = r.Persist(ctx, "e").Result()
			eq(t, "PERSIST without expiry", ok, err, false)
			ok, err = r.ExpireGT(ctx, "e", time.Second).Result()
			eq(t, "EXPIRE GT on a key without expiry", ok, err, false)
			ok, err = r.Expire(ctx, "nope", time.Second).Result()
			eq(t, "EXPIRE missing", ok, err, false)
			ok, err = r.Expire(ctx, "e", -time.Second).Result()
			eq(t, "EXPIRE negative deletes", ok, err, true)
			cnt, err = r.Exists(ctx, "e").Result()
			eq(t, "EXISTS after a negative EXPIRE", cnt, err, int64(0))

			// Counters.
			i, err := r.Incr(ctx, "n").Result()
			eq(t, "INCR", i, err, int64(1))
			i, err = r.IncrBy(ctx, "n", 41).Result()
			eq(t, "INCRBY", i, err, int64(42))
			i, err = r.Decr(ctx, "n").Result()
			eq(t, "DECR", i, err, int64(41))
			i, err = r.DecrBy(ctx, "n", 50).Result()
			eq(t, "DECRBY", i, err, int64(-9))
			s, err = r.Get(ctx, "n").Result()
			eq(t, "GET a counter", s, err, "-9")
			s, err = r.Type(ctx, "n").Result()
			eq(t, "TYPE of a counter", s, err, "string")
			i, err = r.StrLen(ctx, "n").Result()
			eq(t, "STRLEN of a counter", i, err, int64(2))
			ok, err = r.Expire(ctx, "n", 10*time.Second).Result()
			eq(t, "EXPIRE a counter", ok, err, true)
			i, err = r.Incr(ctx, "n").Result()
			eq(t, "INCR keeps the expiry", i, err, int64(-8))
			d, err = r.TTL(ctx, "n").Result()
			eq(t, "TTL of a counter", d, err, 10*time.Second)
			r.Set(ctx, "sv", "10", 0)
			i, err = r.Incr(ctx, "sv").Result()
			eq(t, "INCR on an integer value", i, err, int64(11))
			eq(t, "SET on a counter", r.Set(ctx, "sv", "text", 0).Val(), nil, "OK")
			s, err = r.Get(ctx, "sv").Result()
			eq(t, "GET after SET on a counter", s, err, "text")
			_, err = r.Incr(ctx, "sv").Result()
			redisErr(t, "INCR on text", err, "ERR value is not an integer or out of range")
			r.Set(ctx, "max", strconv.FormatInt(1<<63-1, 10), 0)
			_, err = r.Incr(ctx, "max").Result()
			redisErr(t, "INCR past the maximum", err, "ERR increment or decrement would overflow")

			// STRLEN, APPEND.
			i, err = r.StrLen(ctx, "nope").Result()
			eq(t, "STRLEN missing", i, err, int64(0))
			i, err = r.Append(ctx, "ap", "hello").Result()
			eq(t, "APPEND new", i, err, int64(5))
			r.Expire(ctx, "ap", time.Minute)
			i, err = r.Append(ctx, "ap", " world").Result()
			eq(t, "APPEND", i, err, int64(11))
			s, err = r.Get(ctx, "ap").Result()
			eq(t, "GET after APPEND", s, err, "hello world")
			d, err = r.TTL(ctx, "ap").Result()
			eq(t, "APPEND keeps the expiry", d, err, time.Minute)
			i, err = r.Append(ctx, "n", "5").Result()
			eq(t, "APPEND to a counter", i, err, int64(3))
			s, err = r.Get(ctx, "n").Result()
			eq(t, "GET after APPEND to a counter", s, err, "-85")

			// Binary keys and values survive.
			bin := "a\r\nb\x00\xff"
			r.Set(ctx, bin, bin, 0)
			s, err = r.Get(ctx, bin).Result()
			eq(t, "binary round trip", s, err, bin)
		})
	}
}

// TestRespConnectionCommands covers the connection and server commands in
// both protocols.
func TestRespConnectionCommands(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", proto), func(t *testing.T) {
			n := startServer(t, options{}, nil)
			r := redisClient(t, n, proto, "")
			ctx := ctxT(t)
			s, err := r.Ping(ctx).Result()
			eq(t, "PING", s, err, "PONG")
			s, err = r.Do(ctx, "ping", "hi").Text()
			eq(t, "PING msg", s, err, "hi")
			s, err = r.Echo(ctx, "echo me").Result()
			eq(t, "ECHO", s, err, "echo me")

			hello, err := r.Do(ctx, "hello", proto).Result()
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			switch h := hello.(type) {
			case map[any]any: // RESP3
				fields = map[string]any{}
				for k, v := range h {
					fields[k.(string)] = v
				}
			case []any: // RESP2
				fields = map[string]any{}
				for i := 0; i+1 < len(h); i += 2 {
					fields[h[i].(string)] = h[i+1]
				}
			}
			if fields["proto"] != int64(proto) || fields["server"] != "upu" || fields["version"] != redisVersion || fields["mode"] != "standalone" {
				t.Fatalf("HELLO %d = %v", proto, hello)
			}

			conn := r.Conn()
			defer conn.Close()
			eq(t, "SELECT 0", conn.Select(ctx, 0).Val(), conn.Select(ctx, 0).Err(), "OK")
			redisErr(t, "SELECT 1", conn.Select(ctx, 1).Err(), "ERR DB index is out of range")
			_, err = conn.ClientGetName(ctx).Result()
			isNil(t, "CLIENT GETNAME before SETNAME", err)
			eq(t, "CLIENT SETNAME", conn.ClientSetName(ctx, "tester").Val(), nil, true)
			s, err = conn.ClientGetName(ctx).Result()
			eq(t, "CLIENT GETNAME", s, err, "tester")
			id, err := conn.ClientID(ctx).Result()
			if err != nil || id <= 0 {
				t.Fatalf("CLIENT ID = %d, %v", id, err)
			}
			s, err = conn.Do(ctx, "client", "setinfo", "lib-name", "mylib").Text()
			eq(t, "CLIENT SETINFO", s, err, "OK")
			info, err := conn.ClientInfo(ctx).Result()
			if err != nil || info.ID != id || info.Name != "tester" || info.LibName != "mylib" || info.Resp != proto {
				t.Fatalf("CLIENT INFO = %+v, %v", info, err)
			}
			redisErr(t, "CLIENT SETNAME with a space", conn.ClientSetName(ctx, "a b").Err(),
				"ERR Client names cannot contain spaces, newlines or special characters.")
			redisErr(t, "CLIENT foo", conn.Do(ctx, "client", "foo").Err(), "ERR unknown subcommand 'foo'. Try CLIENT HELP.")
			redisErr(t, "CLIENT SETNAME", conn.Do(ctx, "client", "setname").Err(), "ERR wrong number of arguments for 'client|setname' command")

			cmds, err := r.Command(ctx).Result()
			if err != nil || cmds["get"] == nil || cmds["get"].Arity != 2 || !cmds["get"].ReadOnly || cmds["set"].FirstKeyPos != 1 || len(cmds) != len(n.resp.cmds.sorted) {
				t.Fatalf("COMMAND: %d commands, get=%+v, err %v", len(cmds), cmds["get"], err)
			}
			cnt, err := r.Do(ctx, "command", "count").Int64()
			eq(t, "COMMAND COUNT", cnt, err, int64(len(cmds)))
			infos, err := r.Do(ctx, "command", "info", "MSET", "nope").Slice()
			if err != nil || len(infos) != 2 || infos[1] != nil {
				t.Fatalf("COMMAND INFO = %v, %v", infos, err)
			}
			if mset := infos[0].([]any); len(mset) != 10 || mset[0] != "mset" || mset[1] != int64(-3) || mset[4] != int64(-1) || mset[5] != int64(2) {
				t.Fatalf("COMMAND INFO mset = %v", mset)
			}
			docs, err := r.Do(ctx, "command", "docs").Result()
			if err != nil || reflect.ValueOf(docs).Len() != 0 {
				t.Fatalf("COMMAND DOCS = %v, %v", docs, err)
			}
			list, err := r.CommandList(ctx, nil).Result()
			if err != nil || !slices.Contains(list, "getex") {
				t.Fatalf("COMMAND LIST = %v, %v", list, err)
			}

			conf, err := r.ConfigGet(ctx, "*").Result()
			if err != nil || conf["save"] != "" || conf["appendonly"] != "yes" || conf["databases"] != "1" || conf["maxmemory"] != "0" {
				t.Fatalf("CONFIG GET * = %v, %v", conf, err)
			}
			conf, err = r.ConfigGet(ctx, "MAXMEM*").Result()
			eq(t, "CONFIG GET MAXMEM*", conf, err, map[string]string{"maxmemory": "0", "maxmemory-policy": "noeviction"})
			redisErr(t, "CONFIG SET", r.ConfigSet(ctx, "save", "").Err(), "ERR CONFIG SET is not supported: UPU is configured with upu serve flags")

			r.Set(ctx, "k1", "v", 0)
			r.Set(ctx, "k2", "v", time.Hour)
			all, err := r.Info(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"# Server\r\nredis_version:" + redisVersion + "\r\n", "# Clients\r\nconnected_clients:", "# Memory\r\nused_memory:",
				"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n", "# Upu\r\nnode_id:" + n.ID().String() + "\r\ndomain:default\r\n", "members:1\r\n", "successor:none (no other member)\r\n", "cascade:none (no parent domain)\r\n"} {
				if !strings.Contains(all, want) {
					t.Fatalf("INFO lacks %q:\n%s", want, all)
				}
			}
			one, err := r.Info(ctx, "keyspace").Result()
			eq(t, "INFO keyspace", one, err, "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n")
			cnt, err = r.DBSize(ctx).Result()
			eq(t, "DBSIZE", cnt, err, int64(2))
		})
	}
}

// TestRespPipeline sends 100 commands in one go-redis pipeline, in both
// protocols: the writes reach the store as batches, reads see the writes
// sent before them, and every reply comes back in order.
func TestRespPipeline(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", proto), func(t *testing.T) {
			n := startServer(t, options{}, nil)
			r := redisClient(t, n, proto, "")
			ctx := ctxT(t)
			pipe := r.Pipeline()
			var cmds []redis.Cmder
			for i := range 100 {
				key := fmt.Sprint("p", i/4)
				switch i % 4 {
				case 0:
					cmds = append(cmds, pipe.Set(ctx, key, i, 0))
				case 1:
					cmds = append(cmds, pipe.Get(ctx, key))
				case 2:
					cmds = append(cmds, pipe.Incr(ctx, "counter"))
				case 3:
					cmds = append(cmds, pipe.Do(ctx, "nosuchcommand", i))
				}
			}
			if _, err := pipe.Exec(ctx); err == nil {
				t.Fatal("Exec: no error from the unknown commands")
			}
			for i, c := range cmds {
				switch i % 4 {
				case 0:
					eq(t, fmt.Sprint("SET ", i), c.(*redis.StatusCmd).Val(), c.Err(), "OK")
				case 1:
					eq(t, fmt.Sprint("GET ", i), c.(*redis.StringCmd).Val(), c.Err(), strconv.Itoa(i-1))
				case 2:
					eq(t, fmt.Sprint("INCR ", i), c.(*redis.IntCmd).Val(), c.Err(), int64(i/4+1))
				case 3:
					redisErr(t, fmt.Sprint("unknown ", i), c.Err(), fmt.Sprintf("ERR unknown command 'nosuchcommand', with args beginning with: '%d' ", i))
				}
			}
			// The connection still serves.
			s, err := r.Get(ctx, "counter").Result()
			eq(t, "GET after the pipeline", s, err, "25")
		})
	}
}

// TestRespErrors checks the exact error replies, and that the connection
// serves the next command after each.
func TestRespErrors(t *testing.T) {
	n := startServer(t, options{MaxKeySize: 8, MaxValueSize: 16}, nil)
	w := dialResp(t, n)
	w.do("SET", "num", "text")
	tests := []struct {
		cmd  []string
		want string
	}{
		{[]string{"foo"}, "ERR unknown command 'foo', with args beginning with: "},
		{[]string{"foo", "a", "b"}, "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{[]string{"LPUSH", "l", "x"}, "ERR unknown command 'LPUSH', with args beginning with: 'l' 'x' "},
		{[]string{"foo", strings.Repeat("x", 200)}, "ERR unknown command 'foo', with args beginning with: '" + strings.Repeat("x", 128) + "' "},
		{[]string{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"get", "a", "b"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"MSET", "a", "1", "b"}, "ERR wrong number of arguments for 'mset' command"},
		{[]string{"SET", "k", "v", "NX", "XX"}, "ERR syntax error"},
		{[]string{"SET", "k", "v", "EX", "10", "PX", "10"}, "ERR syntax error"},
		{[]string{"SET", "k", "v", "KEEPTTL", "EX", "10"}, "ERR syntax error"},
		{[]string{"SET", "k", "v", "EX"}, "ERR syntax error"},
		{[]string{"SET", "k", "v", "FOO"}, "ERR syntax error"},
		{[]string{"SET", "k", "v", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]string{"SET", "k", "v", "PX", "-5"}, "ERR invalid expire time in 'set' command"},
		{[]string{"SET", "k", "v", "EX", "9223372036854775807"}, "ERR invalid expire time in 'set' command"},
		{[]string{"SET", "k", "v", "EX", "abc"}, "ERR value is not an integer or out of range"},
		{[]string{"SETEX", "k", "0", "v"}, "ERR invalid expire time in 'setex' command"},
		{[]string{"PSETEX", "k", "-1", "v"}, "ERR invalid expire time in 'psetex' command"},
		{[]string{"GETEX", "k", "EX", "0"}, "ERR invalid expire time in 'getex' command"},
		{[]string{"GETEX", "k", "PERSIST", "EX", "1"}, "ERR syntax error"},
		{[]string{"EXPIRE", "k", "x"}, "ERR value is not an integer or out of range"},
		{[]string{"EXPIRE", "k", "10", "NX", "XX"}, "ERR NX and XX, GT or LT options at the same time are not compatible"},
		{[]string{"EXPIRE", "k", "10", "GT", "LT"}, "ERR GT and LT options at the same time are not compatible"},
		{[]string{"EXPIRE", "k", "10", "FOO"}, "ERR Unsupported option FOO"},
		{[]string{"EXPIRE", "k", "9223372036854775807"}, "ERR invalid expire time in 'expire' command"},
		{[]string{"PEXPIRE", "k", "9223372036854775807"}, "ERR invalid expire time in 'pexpire' command"},
		{[]string{"INCR", "num"}, "ERR value is not an integer or out of range"},
		{[]string{"INCRBY", "k", "1.5"}, "ERR value is not an integer or out of range"},
		{[]string{"INCRBY", "k", "+1"}, "ERR value is not an integer or out of range"},
		{[]string{"DECRBY", "k", "-9223372036854775808"}, "ERR decrement would overflow"},
		{[]string{"SELECT", "x"}, "ERR value is not an integer or out of range"},
		{[]string{"SCAN", "x"}, "ERR invalid cursor"},
		{[]string{"SCAN", "0", "COUNT", "0"}, "ERR syntax error"},
		{[]string{"SCAN", "0", "FOO", "1"}, "ERR syntax error"},
		{[]string{"SCAN", "0", "MATCH"}, "ERR syntax error"},
		{[]string{"HELLO", "4"}, "NOPROTO unsupported protocol version"},
		{[]string{"HELLO", "x"}, "ERR Protocol version is not an integer or out of range"},
		{[]string{"HELLO", "3", "foo"}, "ERR Syntax error in HELLO option 'foo'"},
		{[]string{"AUTH", "x"}, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{[]string{"AUTH", "someone", "x"}, "WRONGPASS invalid username-password pair or user is disabled."},
		{[]string{"CONFIG", "foo"}, "ERR unknown subcommand 'foo'. Try CONFIG HELP."},
		{[]string{"CONFIG", "GET"}, "ERR wrong number of arguments for 'config|get' command"},
		{[]string{"COMMAND", "foo"}, "ERR unknown subcommand 'foo'. Try COMMAND HELP."},
		{[]string{"PING", "a", "b"}, "ERR wrong number of arguments for 'ping' command"},
		{[]string{"SET", "", "v"}, "ERR empty keys are not supported"},
		{[]string{"SET", "123456789", "v"}, "ERR key is too large (9 bytes, max-key-size 8)"},
		{[]string{"SET", "k", strings.Repeat("v", 17)}, "ERR string exceeds maximum allowed size (max-value-size 16)"},
		{[]string{"MSET", "a", "1", "k", strings.Repeat("v", 17)}, "ERR string exceeds maximum allowed size (max-value-size 16)"},
		{[]string{"APPEND", "k", strings.Repeat("v", 17)}, "ERR string exceeds maximum allowed size (max-value-size 16)"},
		{[]string{"INCR", "123456789"}, "ERR key is too large (9 bytes, max-key-size 8)"},
	}
	for _, tt := range tests {
		if got := w.do(tt.cmd...); got != errReply(tt.want) {
			t.Errorf("%q: got %q, want %q", tt.cmd, got, errReply(tt.want))
		}
		if got := w.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING after %q: %q", tt.cmd, got)
		}
	}
	// A failed MSET wrote nothing; an APPEND past the limit neither.
	if got := w.do("EXISTS", "a"); got != ":0\r\n" {
		t.Errorf("EXISTS a after the failed MSET: %q", got)
	}
	w.do("SET", "ap", strings.Repeat("v", 10))
	if got, want := w.do("APPEND", "ap", strings.Repeat("v", 7)), errReply("ERR string exceeds maximum allowed size (upu: too large: value of 17 bytes after append, limit 16)"); got != want {
		t.Errorf("APPEND past the limit: %q, want %q", got, want)
	}
	// Reads of keys that cannot exist find nothing.
	if got := w.do("GET", ""); got != "$-1\r\n" {
		t.Errorf("GET of an empty key: %q", got)
	}
	if got := w.do("EXISTS", "123456789"); got != ":0\r\n" {
		t.Errorf("EXISTS of a key over the limit: %q", got)
	}
}

// TestRespUnknownCommandThenGet checks that a connection stays usable after
// an unknown command, through go-redis.
func TestRespUnknownCommandThenGet(t *testing.T) {
	n := startServer(t, options{}, nil)
	r := redisClient(t, n, 3, "")
	ctx := ctxT(t)
	conn := r.Conn()
	defer conn.Close()
	conn.Set(ctx, "k", "v", 0)
	redisErr(t, "LPUSH", conn.Do(ctx, "lpush", "l", "x").Err(), "ERR unknown command 'lpush', with args beginning with: 'l' 'x' ")
	s, err := conn.Get(ctx, "k").Result()
	eq(t, "GET on the same connection", s, err, "v")
}

// TestRespProtocolError sends malformed frames on raw connections: each gets
// redis' protocol error and is closed, after the answers to the commands
// before it; another connection is unaffected.
func TestRespProtocolError(t *testing.T) {
	n := startServer(t, options{MaxValueSize: 1024}, nil)
	other := dialResp(t, n)
	if got := other.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	tests := []struct {
		name, input, want string
	}{
		{"bad multibulk length", "*1\r\n$3\r\nGET\r\n*x\r\n", "-ERR wrong number of arguments for 'get' command\r\n-ERR Protocol error: invalid multibulk length\r\n"},
		{"expected dollar", "PING\r\n*1\r\n+PING\r\n", "+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n"},
		{"bad bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over the limit", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"unbalanced quotes", "SET k \"v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"writes before the error", "SET a 1\r\nINCR c\r\n*1\r\n$-1x\r\n", "+OK\r\n:1\r\n-ERR Protocol error: invalid bulk length\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dialResp(t, n)
			w.write(tt.input)
			var got string
			for len(got) < len(tt.want) {
				got += w.reply()
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			w.expectClosed()
			if got := other.do("GET", "k"); got != bulk("v") {
				t.Fatalf("the other connection: %q", got)
			}
		})
	}
}

// TestRespInline sends inline commands, as telnet users and redis-cli's
// old modes do.
func TestRespInline(t *testing.T) {
	n := startServer(t, options{}, nil)
	w := dialResp(t, n)
	w.write("SET greeting \"hello world\\n\"\r\nGET greeting\r\n\r\nincr c\nPING\r\n")
	for _, want := range []string{"+OK\r\n", bulk("hello world\n"), ":1\r\n", "+PONG\r\n"} {
		if got := w.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	w.write("QUIT\r\nPING\r\n")
	if got := w.reply(); got != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	w.expectClosed()
}

// TestRespRESP3Replies checks the RESP3 encodings on a raw connection.
func TestRespRESP3Replies(t *testing.T) {
	n := startServer(t, options{}, nil)
	w := dialResp(t, n)
	w.do("SET", "k", "v")
	if got := w.do("GET", "nope"); got != "$-1\r\n" {
		t.Fatalf("RESP2 null: %q", got)
	}
	hello := w.do("HELLO", "3", "SETNAME", "raw")
	if !strings.HasPrefix(hello, "%7\r\n$6\r\nserver\r\n$3\r\nupu\r\n") || !strings.Contains(hello, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3: %q", hello)
	}
	for _, tt := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"GET", "nope"}, "_\r\n"},
		{[]string{"MGET", "k", "nope"}, "*2\r\n$1\r\nv\r\n_\r\n"},
		{[]string{"CONFIG", "GET", "databases"}, "%1\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"},
		{[]string{"INFO", "replication"}, verbatim("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n")},
		{[]string{"CLIENT", "GETNAME"}, bulk("raw")},
	} {
		if got := w.do(tt.cmd...); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.cmd, got, tt.want)
		}
	}
	// HELLO 2 answers in RESP2 and switches back.
	if got := w.do("HELLO", "2"); !strings.HasPrefix(got, "*14\r\n$6\r\nserver\r\n") {
		t.Fatalf("HELLO 2: %q", got)
	}
	if got := w.do("GET", "nope"); got != "$-1\r\n" {
		t.Fatalf("RESP2 null after HELLO 2: %q", got)
	}
}

func verbatim(s string) string { return "=" + strconv.Itoa(len(s)+4) + "\r\ntxt:" + s + "\r\n" }

// TestRespAuth requires the client token: NOAUTH before AUTH, WRONGPASS for
// a bad one, and go-redis authenticates through HELLO in both protocols.
func TestRespAuth(t *testing.T) {
	n := startServer(t, options{ClientToken: "s3cret"}, nil)
	w := dialResp(t, n)
	for _, cmd := range [][]string{{"GET", "k"}, {"PING"}, {"SELECT", "0"}} {
		if got := w.do(cmd...); got != errReply("NOAUTH Authentication required.") {
			t.Fatalf("%q before AUTH: %q", cmd, got)
		}
	}
	if got := w.do("GET"); got != errReply("ERR wrong number of arguments for 'get' command") {
		t.Fatalf("GET without a key before AUTH: %q", got) // arity is checked first, as in redis
	}
	if got := w.do("HELLO", "3"); !strings.HasPrefix(got, "-NOAUTH HELLO must be called with the client already authenticated") {
		t.Fatalf("HELLO before AUTH: %q", got)
	}
	for _, cmd := range [][]string{{"AUTH", "wrong"}, {"AUTH", "default", "wrong"}, {"AUTH", "admin", "s3cret"}, {"HELLO", "3", "AUTH", "default", "wrong"}} {
		if got := w.do(cmd...); got != errReply(errWrongPass) {
			t.Fatalf("%q: %q", cmd, got)
		}
	}
	if got := w.do("GET", "k"); got != errReply("NOAUTH Authentication required.") {
		t.Fatalf("GET after failed AUTHs: %q", got)
	}
	if got := w.do("AUTH", "s3cret"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := w.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET after AUTH: %q", got)
	}
	w2 := dialResp(t, n)
	if got := w2.do("AUTH", "default", "s3cret"); got != "+OK\r\n" {
		t.Fatalf("AUTH default: %q", got)
	}
	w3 := dialResp(t, n)
	if got := w3.do("HELLO", "2", "AUTH", "default", "s3cret"); !strings.HasPrefix(got, "*14\r\n") {
		t.Fatalf("HELLO AUTH: %q", got)
	}
	if got := w3.do("GET", "k"); got != bulk("v") {
		t.Fatalf("GET after HELLO AUTH: %q", got)
	}

	ctx := ctxT(t)
	for _, proto := range []int{2, 3} {
		s, err := redisClient(t, n, proto, "s3cret").Get(ctx, "k").Result()
		eq(t, fmt.Sprint("go-redis RESP", proto, " with the token"), s, err, "v")
		err = redisClient(t, n, proto, "wrong").Get(ctx, "k").Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("go-redis RESP%d with a bad token: %v", proto, err)
		}
		err = redisClient(t, n, proto, "").Get(ctx, "k").Err()
		if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("go-redis RESP%d without a token: %v", proto, err)
		}
	}
}

// TestRespScan walks the keys with SCAN: COUNT, MATCH, TYPE, a complete
// walk while keys are written and deleted, and cursors that outlive their
// slot in the table.
func TestRespScan(t *testing.T) {
	n := startServer(t, options{}, nil)
	r := redisClient(t, n, 3, "")
	ctx := ctxT(t)
	var want []string
	for i := range 300 {
		k := fmt.Sprintf("key:%03d", i)
		want = append(want, k)
		if err := r.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.Set(ctx, "other", "v", 0)
	r.Set(ctx, "gone", "v", 0)
	r.Del(ctx, "gone")

	// A walk during which keys come and go returns every key that stayed.
	seen := map[string]int{}
	var cursor uint64
	for calls := 0; ; calls++ {
		keys, next, err := r.Scan(ctx, cursor, "key:*", 25).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			seen[k]++
		}
		r.Set(ctx, fmt.Sprintf("key:%03d:new", calls), "v", 0)
		r.Del(ctx, fmt.Sprintf("key:%03d:new", calls-1))
		if next == 0 {
			break
		}
		if next >= 1<<53 {
			t.Fatalf("cursor %d does not fit a float64", next)
		}
		cursor = next
		if calls > 100 {
			t.Fatal("SCAN does not end")
		}
	}
	for _, k := range want {
		if seen[k] != 1 {
			t.Fatalf("key %s returned %d times", k, seen[k])
		}
	}
	if seen["other"] != 0 || seen["gone"] != 0 {
		t.Fatalf("MATCH let through %v", seen)
	}

	// The iterator, COUNT larger than the store, TYPE.
	var all []string
	it := r.Scan(ctx, 0, "", 7).Iterator()
	for it.Next(ctx) {
		all = append(all, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(all)
	if len(all) != 302 || all[301] != "other" { // the 300, one :new, other
		t.Fatalf("full scan: %d keys, last %q", len(all), all[len(all)-1])
	}
	keys, next, err := r.ScanType(ctx, 0, "", 1000, "string").Result()
	if err != nil || next != 0 || len(keys) != 302 {
		t.Fatalf("SCAN TYPE string: %d keys, cursor %d, %v", len(keys), next, err)
	}
	keys, _, err = r.ScanType(ctx, 0, "", 1000, "hash").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("SCAN TYPE hash: %v, %v", keys, err)
	}

	// A cursor whose slot was reused resumes at the key's first bytes: the
	// walk repeats some keys but misses none.
	keys, next, err = r.Scan(ctx, 0, "", 10).Result()
	if err != nil || next == 0 {
		t.Fatal(keys, next, err)
	}
	for range len(n.resp.cursors.slots) {
		n.resp.cursors.save([]byte("zzzz"))
	}
	got := map[string]bool{}
	for _, k := range keys {
		got[k] = true
	}
	for cursor = next; cursor != 0; {
		keys, cursor, err = r.Scan(ctx, cursor, "", 100).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			got[k] = true
		}
	}
	if len(got) != 302 {
		t.Fatalf("walk over a lost cursor: %d keys", len(got))
	}
	redisErr(t, "SCAN with a foreign cursor", r.Do(ctx, "scan", uint64(1)<<60).Err(), errBadCursor)
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything", true},
		{"key:*", "key:1", true},
		{"key:*", "kez:1", false},
		{"*:1", "key:1", true},
		{"k?y", "key", true},
		{"k?y", "ky", false},
		{"k[ae]y", "key", true},
		{"k[ae]y", "kiy", false},
		{"k[^ae]y", "kiy", true},
		{"k[^ae]y", "key", false},
		{"k[a-f]y", "key", true},
		{"k[f-a]y", "key", true}, // a reversed range is swapped
		{"k[a-c]y", "key", false},
		{"k\\*y", "k*y", true},
		{"k\\*y", "kay", false},
		{"k[\\]]y", "k]y", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"**a", "ba", true},
		{"a[bc", "ab", true}, // an unclosed class ends the pattern
		{"a[bc", "abx", false},
		{"\\", "\\", true},
		{"h*o w*d", "hello world", true},
		{strings.Repeat("a*", 30) + "b", strings.Repeat("a", 200), false}, // no exponential backtracking
	}
	for _, tt := range tests {
		if got := globMatch([]byte(tt.pattern), []byte(tt.s)); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"-7", -7, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false}, {"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+1", 0, false}, {"01", 0, false}, {"-0", 0, false}, {" 1", 0, false}, {"1.0", 0, false},
	}
	for _, tt := range tests {
		if n, ok := parseInt([]byte(tt.in)); n != tt.n || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}

// TestRespMaxConns refuses a connection past MaxConns with redis' error,
// and one past MaxConnsPerClient with its own, while the first is still
// answered.
func TestRespMaxConns(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want string
	}{
		{"max conns", options{MaxConns: 1}, "ERR max number of clients reached"},
		{"per client", options{MaxConnsPerClient: 1}, "ERR max connections per client reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startServer(t, tt.o, nil)
			first := dialResp(t, n)
			if got := first.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			second := dialResp(t, n)
			if got := second.reply(); got != errReply(tt.want) {
				t.Fatalf("second connection: %q", got)
			}
			second.expectClosed()
			if got := first.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("first connection after the refusal: %q", got)
			}
		})
	}
}

// TestRespPipelineDeeperThanMaxPipeline is answered whole and in order.
func TestRespPipelineDeeperThanMaxPipeline(t *testing.T) {
	n := startServer(t, options{MaxPipeline: 2}, nil)
	w := dialResp(t, n)
	w.write("SET a 1\r\nGET a\r\nINCR a\r\nGET a\r\nPING\r\n")
	for _, want := range []string{"+OK\r\n", bulk("1"), ":2\r\n", bulk("2"), "+PONG\r\n"} {
		if got := w.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestRespIdleTimeout closes a connection that sends nothing for the idle
// timeout.
func TestRespIdleTimeout(t *testing.T) {
	n := startServer(t, options{IdleTimeout: 100 * time.Millisecond}, nil)
	w := dialResp(t, n)
	if got := w.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	w.expectClosed()
}

// TestRespShutdown answers what a connection sent before Close, then
// closes it.
func TestRespShutdown(t *testing.T) {
	n := startServer(t, options{}, nil)
	w := dialResp(t, n)
	w.send("SET", "k", "v")
	if got := w.reply(); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	w.expectClosed()
	if n.resp.Open() != 0 {
		t.Fatalf("%d connections left", n.resp.Open())
	}
}

// TestUPUClientOnRespPort: a UPU protocol hello on the Redis port is told
// at once which protocol this port speaks, and the connection is closed,
// instead of waiting for a line the binary hello never ends.
func TestUPUClientOnRespPort(t *testing.T) {
	n := startServer(t, options{}, clock.Real())
	w := dialResp(t, n)
	hello, err := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello}, &protocol.Hello{Version: protocol.Version, Role: protocol.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	w.write(string(hello))
	if got, want := w.reply(), "-ERR this port speaks the Redis protocol (RESP), not the UPU protocol: use the node's --addr\r\n"; got != want {
		t.Fatalf("reply to a UPU hello = %q, want %q", got, want)
	}
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.br.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("after the error the connection stays open: read %v", err)
	}
}
