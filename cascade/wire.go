package cascade

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// The requests a node Calls on a member of its parent domain
// (peer.KindCascade). Bodies are msgpack maps with short keys; unknown keys
// are ignored, so fields can be added.

type op uint8

const (
	opInfo op = 1 // the parent domain's members and path; tells it of the child
	opRead op = 2 // a scoped read
)

type request struct {
	Op     op     `msgpack:"o"`
	Domain string `msgpack:"d,omitempty"`  // the asking node's domain
	Relay  bool   `msgpack:"rl,omitempty"` // info: the asker relays its domain
	Key    []byte `msgpack:"k,omitempty"`  // read
	Root   bool   `msgpack:"rt,omitempty"` // read: scope root, else up
	ReqID  string `msgpack:"r,omitempty"`  // read: the request's ID, kept across levels
	Hops   int    `msgpack:"h,omitempty"`  // read: the domains it passed, this one included
}

// infoResponse describes the answering node's domain.
type infoResponse struct {
	Domain string `msgpack:"d"`
	// Path is the answering domain's path to the root, itself first, as
	// it last learned it; Cycle, that it found itself on it.
	Path    []string     `msgpack:"p"`
	Cycle   bool         `msgpack:"c,omitempty"`
	Members []memberInfo `msgpack:"m"` // its live members
}

type memberInfo struct {
	ID   string `msgpack:"n"`
	Addr string `msgpack:"a"`
}

type readResponse struct {
	Record []byte `msgpack:"rec,omitempty"` // crdt.AppendRecord; empty: none
	Domain string `msgpack:"d"`
}

func encode(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("upu: cascade: encode: %w", err)
	}
	return b, nil
}

func decodeInto(b []byte, v any) error {
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("upu: cascade: bad message: %w", err)
	}
	return nil
}
