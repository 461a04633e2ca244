// Package peer owns the link between two nodes: one TCP connection,
// authenticated once, that carries any number of concurrent requests and
// one-way messages in both directions, each to the handler registered for
// its kind. Replication runs over it today (package replication's
// LinkTransport); the cascade's relay to a parent domain and scoped reads
// are the next kinds of traffic meant to share it.
//
// # Establishing a link
//
// A link rides the node's binary protocol port, so a node listens on one
// port for clients and peers alike. The dialer sends the usual hello with
// the peer role, its node ID and the peer token, then an OpPeerLink
// request (protocol/SPEC.md). The server checks the token as for any peer
// connection, answers OK, and hands the socket, with whatever it already
// read past that request, to Pool.AcceptLink. From then on both ends speak
// the link format below and no more protocol frames. The dialer checks
// that the node answering is the one it meant (the node ID in the
// server's hello): an address gossip reported stale never links to the
// wrong node.
//
// # Multiplexing
//
// The socket is multiplexed with hashicorp/yamux, the stream multiplexer
// Consul and Nomad run their RPC over, from the same family as serf and
// memberlist that gossip uses: many streams share the connection with
// per-stream flow control, so a large digest-sync chunk does not stall a
// small request behind it. A stream's first byte says what it carries:
//
//	0: one request and its response (Call)
//	1: one-way messages, one after another, never answered (Send)
//
// and its frames are, all integers big-endian:
//
//	request:  kind uint8 | timeout_ms uint32 | len uint32 | body
//	response: status uint8 | len uint32 | body
//
// A Call opens a stream of its own. timeout_ms is what was left of the
// caller's deadline (0: none); the handler's context ends with it. status
// is 0 for success (body: the handler's answer), 1 when no handler is
// registered for the kind, 2 when the handler failed (body: its error
// message), and 3 when the request was larger than the receiver's
// MaxMessage. Each side Sends on one message stream per link, opened by
// its first Send and kept, whose requests carry timeout_ms 0 and are
// handled in order; one of a kind nobody serves, or over MaxMessage, is
// skipped.
//
// A stream costs yamux frames to open and close, and the Call's answer a
// round trip; one-way messages on a stream that stays open cost neither.
// On loopback (BenchmarkCall, 2 busy shared cores) a 256-byte Call takes
// 130–180 µs and about 50 allocations, a Sent message 35–50 µs from Send
// to its handler and 3 allocations (its body, and two in yamux), and the
// same request and answer on a bare TCP connection 20–30 µs and 3
// allocations; at 64 KiB, 450–600, 150–270 and 100–150 µs. A Call so
// costs measurably more than the bare connection, a Send about as much:
// traffic with a rate, replication, uses Send, its acknowledgements being
// messages of their own, and Call serves what needs an answer at a lower
// rate (a scoped read, a relay's handshake).
//
// # Links, liveness, redial
//
// A Pool keeps at most one link it dialed per remote node, and serves
// every link it accepted; Call uses whichever link to the node is up, so
// an answer to a node that dialed this one goes back over that node's
// link even when this node has no address for it. A link is dialed on the
// first Call that needs it and kept. A dial that fails makes later Calls
// to that node fail at once with ErrUnreachable until a backoff passes
// (Config.RedialMin, doubling up to Config.RedialMax); a link that dies is
// dropped, and the next Call dials again. yamux pings each link every
// Config.KeepAlive; a link on which nothing at all arrived (a ping, its
// answer, or any stream's data, in either direction) for Config.DeadAfter
// is closed.
//
// Every goroutine a Pool starts (per link: yamux's own, an accept loop,
// the handlers it runs, a liveness monitor) ends before Close returns.
package peer
