// Package node wires one upu process together and runs its lifecycle: it
// opens the store and the data service (package kv) over it, sets up
// logging with the node's fixed fields and one metrics registry, runs the
// domain's membership (gossip) and replication, and starts the front ends
// over kv: the binary protocol (frontend/native), and when configured the
// Redis protocol (frontend/redis) and the HTTP endpoint (httpd). The front
// ends learn of the node's state (status, members, INFO, health) through
// small interfaces it implements; none of them reaches back into it.
//
// Close stops accepting, lets every front end answer what its connections
// have already sent, leaves the domain, and then closes the store.
package node
