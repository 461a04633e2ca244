package peer

import "strconv"

// Kind names what a request on a link is, and so which handler serves it.
// Values are part of the link format: never renumber.
type Kind uint8

const (
	// KindReplicate carries one replication message (package
	// replication's Message encoding), Sent one-way.
	KindReplicate Kind = 1
	// KindCascade carries the cascade's requests to a member of the parent
	// domain (package cascade), Called.
	KindCascade Kind = 2
)

var kindNames = [256]string{
	KindReplicate: "replicate",
	KindCascade:   "cascade",
}

// String returns the kind's name, as logs and errors show it.
func (k Kind) String() string {
	if n := kindNames[k]; n != "" {
		return n
	}
	return "kind " + strconv.Itoa(int(k))
}
