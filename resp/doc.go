// Package resp owns the Redis serialization protocol, RESP2 and RESP3, as
// spoken by UPU's optional Redis-compatible listener: a streaming Reader that
// splits whatever a socket read returned into commands (multibulk or inline,
// with redis' limits and redis' protocol error texts), and a Writer that
// appends replies in the connection's protocol version and sends them in one
// write.
//
// It knows no commands and imports nothing of UPU's. Its I/O is one Read into
// the Reader's buffer and one Write of the Writer's buffer; the node package
// owns the listener, the command table, HELLO (which switches a Writer to
// RESP3) and closing a connection after a protocol error.
package resp
