// Package protocol owns UPU's binary wire format: the fixed 16-byte frame
// header, the opcodes, the msgpack message bodies, typed error codes, and a
// streaming Decoder that splits a byte stream into frames whatever the reads
// return. It does no I/O of its own beyond reading into a buffer, and knows
// nothing of storage. SPEC.md describes the format for other implementers.
package protocol
