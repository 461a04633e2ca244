// Package testcert makes a throwaway CA and certificates signed by it,
// in memory, for tests of TLS listeners and dialers: no key is ever
// committed.
package testcert
