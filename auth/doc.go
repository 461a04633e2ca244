// Package auth is the one place that says what each role of a connection
// may do and which roles a token grants, for every front end (the binary
// protocol, RESP, HTTP): a client reads and writes data and reads status; a
// peer may also send replication and relay traffic; an admin may also
// change the cascade, the log level and thresholds, take backups and read
// pprof. The token a connection presents decides what it is granted,
// compared in constant time against each configured token. A refusal is a
// *Refusal naming the role needed; failures are counted in a metric and
// logged at most once per interval per listener (Failures).
package auth
