package native

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
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
	before := logger.SlowThreshold()
	if req.Threshold != "" {
		d, err := time.ParseDuration(req.Threshold)
		if err != nil || d <= 0 {
			c.fail(f, rid, protocol.CodeBadRequest, fmt.Sprintf("slow threshold %q: want a positive duration with its unit, e.g. 50ms", req.Threshold), false)
			return
		}
		if d != before {
			if c.role != protocol.RoleAdmin {
				c.fail(f, rid, protocol.CodeUnauthorized, "changing the slow threshold needs the admin role", false)
				return
			}
			if err := logger.SetSlowThreshold(d); err != nil {
				c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
				return
			}
			logger.Audit(c.remote, "slow-threshold", before.String(), d.String(), logrus.Fields{logging.FieldReqID: rid.String()})
			c.log.WithFields(logrus.Fields{"before": before.String(), "after": d.String(), logging.FieldReqID: rid.String()}).Info("slow threshold changed")
		}
	}
	c.reply(f, &protocol.SlowThresholdRequest{Threshold: logger.SlowThreshold().String()})
}

func (c *conn) logLevel(f protocol.Frame) {
	rid := c.newID()
	var req protocol.LogLevelRequest
	if !c.decode(f, &req) {
		return
	}
	logger := c.s.logger
	before := logger.Level()
	if req.Level != "" && req.Level != before {
		if c.role != protocol.RoleAdmin {
			c.fail(f, rid, protocol.CodeUnauthorized, "changing the log level needs the admin role", false)
			return
		}
		if err := logger.SetLevel(req.Level); err != nil {
			c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
			return
		}
		logger.Audit(c.remote, "log-level", before, logger.Level(), logrus.Fields{logging.FieldReqID: rid.String()})
		c.log.WithFields(logrus.Fields{"before": before, "after": logger.Level(), logging.FieldReqID: rid.String()}).Info("log level changed")
	}
	c.reply(f, &protocol.LogLevelRequest{Level: logger.Level()})
}
