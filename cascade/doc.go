// Package cascade will own the domain hierarchy: the replicated parent setting
// of a domain, the choice of the relay member by rendezvous hashing, streaming
// the domain's log to a member of the parent domain, and reads scoped up the
// tree (local, up, root).
package cascade
