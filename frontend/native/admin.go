package native

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/protocol"
)

func (c *conn) status(f protocol.Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	resp := protocol.StatusResponse{
		NodeID: c.s.cfg.NodeID.String(),
		Domain: c.s.cfg.Domain,
		Addr:   c.s.Addr().String(),
		Conns:  c.s.Open(),
	}
	if err := c.s.admin.Status(ctx, &resp); err != nil {
		c.failErr(f, c.newID(), err)
		return
	}
	c.reply(f, &resp)
}

func (c *conn) digest(f protocol.Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	sum, keys, err := c.s.admin.Digest(ctx)
	if err != nil {
		c.failErr(f, c.newID(), err)
		return
	}
	c.reply(f, &protocol.DigestResponse{Digest: sum, Keys: int64(keys)})
}

// members answers the members request: the domain as gossip sees it, or
// this node alone when it does not gossip.
func (c *conn) members(f protocol.Frame) {
	c.reply(f, &protocol.MembersResponse{Members: c.s.admin.Members()})
}

// slowThreshold reads or, for the admin role, changes the slow-operation
// threshold; a change is audited.
func (c *conn) slowThreshold(f protocol.Frame) {
	rid := c.newID()
	var req protocol.SlowThresholdRequest
	if !c.decode(f, &req) {
		return
	}
	logger := c.s.logger
	if req.Threshold != "" {
		d, err := time.ParseDuration(req.Threshold)
		if err != nil || d <= 0 {
			c.fail(f, rid, protocol.CodeBadRequest, fmt.Sprintf("slow threshold %q: want a positive duration with its unit, e.g. 50ms", req.Threshold), false)
			return
		}
		if before := logger.SlowThreshold(); d != before {
			set := func() (string, error) { return d.String(), logger.SetSlowThreshold(d) }
			if !c.change(f, rid, "slow-threshold", before.String(), set) {
				return
			}
		}
	}
	c.reply(f, &protocol.SlowThresholdRequest{Threshold: logger.SlowThreshold().String()})
}

// logLevel reads or, for the admin role, changes the log level; a change
// is audited.
func (c *conn) logLevel(f protocol.Frame) {
	rid := c.newID()
	var req protocol.LogLevelRequest
	if !c.decode(f, &req) {
		return
	}
	logger := c.s.logger
	if before := logger.Level(); req.Level != "" && req.Level != before {
		set := func() (string, error) { err := logger.SetLevel(req.Level); return logger.Level(), err }
		if !c.change(f, rid, "log-level", before, set) {
			return
		}
	}
	c.reply(f, &protocol.LogLevelRequest{Level: logger.Level()})
}

// change makes an admin's change of the node setting named action: refused
// without the admin role, made by set, then audited and logged with the
// values before and after. It returns false when it has answered f with an
// error.
func (c *conn) change(f protocol.Frame, rid reqid.ID, action, before string, set func() (after string, err error)) bool {
	what := strings.ReplaceAll(action, "-", " ")
	if c.role != protocol.RoleAdmin {
		c.fail(f, rid, protocol.CodeUnauthorized, "changing the "+what+" needs the admin role", false)
		return false
	}
	after, err := set()
	if err != nil {
		c.failAdmin(f, rid, err)
		return false
	}
	c.s.logger.Audit(c.remote, action, before, after, logrus.Fields{logging.FieldReqID: rid.String()})
	c.log.WithFields(logrus.Fields{"before": before, "after": after, logging.FieldReqID: rid.String()}).Info(what + " changed")
	return true
}

// errNoCascade answers the cascade requests on a node without a cascade.
const errNoCascade = "this node has no cascade"

// cascadeStatus answers the cascade-status request: the node's place in the
// domain hierarchy.
func (c *conn) cascadeStatus(f protocol.Frame) {
	rid := c.newID()
	if c.s.cascade == nil {
		c.fail(f, rid, protocol.CodeUnavailable, errNoCascade, false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	st, err := c.s.cascade.Status(ctx)
	if err != nil {
		c.failAdmin(f, rid, err)
		return
	}
	c.reply(f, &st)
}

// cascadeParent sets or clears the domain's parent for the admin role and
// answers with the status after. A change is audited with the parent
// before and after; asking for the parent the domain already has changes
// nothing.
func (c *conn) cascadeParent(f protocol.Frame) {
	rid := c.newID()
	var req protocol.CascadeParentRequest
	if !c.decode(f, &req) {
		return
	}
	cas := c.s.cascade
	if cas == nil {
		c.fail(f, rid, protocol.CodeUnavailable, errNoCascade, false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	st, err := cas.Status(ctx)
	if err != nil {
		c.failAdmin(f, rid, err)
		return
	}
	before, want := parentText(st.Parent, st.Seeds), "none"
	if !req.Clear {
		want = parentText(req.Domain, req.Seeds)
	}
	// A request without a domain is the cascade's to refuse, whatever the
	// parent now.
	unchanged := want == before && (req.Clear || req.Domain != "")
	var statusErr error // the change was made, but the status after could not be read
	if !unchanged {
		set := func() (string, error) {
			var err error
			if req.Clear {
				err = cas.ClearParent(ctx)
			} else {
				err = cas.SetParent(ctx, req.Domain, req.Seeds)
			}
			if err != nil {
				return "", err
			}
			if st, statusErr = cas.Status(ctx); statusErr != nil {
				return want, nil
			}
			return parentText(st.Parent, st.Seeds), nil
		}
		if !c.change(f, rid, "cascade-parent", before, set) {
			return
		}
	}
	if statusErr != nil {
		c.failAdmin(f, rid, statusErr)
		return
	}
	c.reply(f, &st)
}

// failAdmin answers an admin request that err failed.
func (c *conn) failAdmin(f protocol.Frame, rid reqid.ID, err error) {
	code, msg := adminError(err)
	c.failWith(f, rid, err, code, msg)
}

// parentText is a parent setting as the audit log and the INFO line show
// it: region@10.0.0.1:7400,10.0.0.2:7400, or none.
func parentText(domain string, seeds []string) string {
	if domain == "" {
		return "none"
	}
	return domain + "@" + strings.Join(seeds, ",")
}
