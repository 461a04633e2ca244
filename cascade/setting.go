package cascade

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Parent is a domain's parent setting: the parent domain's name and the
// binary protocol addresses of some of its members, which serve as seeds
// (the relay learns the parent's current members from the parent).
type Parent struct {
	Domain string   `msgpack:"d"`
	Seeds  []string `msgpack:"s"`
}

// String is how logs and the audit show a setting: region@a:1,b:2, or none.
func (p *Parent) String() string {
	if p == nil {
		return "none"
	}
	return p.Domain + "@" + strings.Join(p.Seeds, ",")
}

// equal reports whether a and b are the same setting (nil: none).
func (a *Parent) equal(b *Parent) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Domain == b.Domain && slices.Equal(a.Seeds, b.Seeds)
}

// check refuses a setting that cannot be a parent of domain self.
func (p *Parent) check(self string) error {
	switch {
	case p.Domain == "":
		return fmt.Errorf("%w: no parent domain named", ErrBadParent)
	case p.Domain == self:
		return fmt.Errorf("%w: domain %s cannot be its own parent", ErrCycle, self)
	case len(p.Seeds) == 0:
		return fmt.Errorf("%w: no address of a member of %s", ErrBadParent, p.Domain)
	}
	for _, s := range p.Seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("%w: seed %q: want HOST:PORT", ErrBadParent, s)
		}
	}
	return nil
}

// settingKey is the system key that holds domain's parent setting. It is
// named for the domain because changes flow up: the parent's store gets
// its children's settings too, under their own names, which it never
// reads as its own.
func settingKey(domain string) []byte { return []byte("cascade/parent/" + domain) }

func encodeParent(p *Parent) ([]byte, error) { return msgpack.Marshal(p) }

func decodeParent(b []byte) (*Parent, error) {
	var p Parent
	if err := msgpack.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("upu: cascade: parent setting unreadable: %w", err)
	}
	return &p, nil
}
