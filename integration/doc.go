// Package integration holds tests that build the upu binary and drive real
// processes over real sockets: restart and kill -9 durability, CLI contracts,
// domains of several nodes, the cascade of domains (its acceptance, outages
// and figures), and chaos runs in network namespaces. It has no non-test
// code.
package integration
