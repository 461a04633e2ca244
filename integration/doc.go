// Package integration holds tests that build the upu binary and drive real
// processes over real sockets: restart and kill -9 durability, CLI contracts,
// and (later) multi-node and multi-domain behaviour. It has no non-test code.
package integration
