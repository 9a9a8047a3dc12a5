package inpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/zds"
)

// DefaultSocketPath is where the node agent listens for ZDS.
const DefaultSocketPath = "/var/run/ztunnel/ztunnel.sock"

// ClientConfig configures a ZDS Client.
type ClientConfig struct {
	// Path of the node agent's socket; empty means DefaultSocketPath.
	Path    string
	Manager *Manager
	Log     *slog.Logger
	// InitialBackoff and MaxBackoff bound the reconnect delay (defaults
	// 100 ms and 5 s).
	InitialBackoff, MaxBackoff time.Duration
}

// Client keeps a ZDS session with the node agent and applies its requests
// to the Manager.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
}

// NewClient returns a client; call Run.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Path == "" {
		cfg.Path = DefaultSocketPath
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: cfg.Log}
}

// Run connects to the node agent, reconnecting with back-off whenever the
// session ends, until ctx is done. Enrolled pods survive a lost session; the
// agent's next snapshot reconciles them. It returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.InitialBackoff
	for {
		conn, err := zds.Dial(ctx, c.cfg.Path)
		if err == nil {
			started := time.Now()
			err = c.session(ctx, conn)
			_ = conn.Close()
			if time.Since(started) > c.cfg.MaxBackoff {
				backoff = c.cfg.InitialBackoff
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("zds session ended, reconnecting", "error", err, "backoff", backoff)
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

func (c *Client) session(ctx context.Context, conn *zds.Conn) error {
	if err := conn.SendHello(ctx, zdsapi.Version_V1); err != nil {
		return fmt.Errorf("send zds hello: %w", err)
	}
	c.log.Info("zds connected", "path", c.cfg.Path)
	m := c.cfg.Manager
	m.beginSnapshot()
	for {
		req, ns, err := conn.RecvRequest(ctx)
		if err != nil {
			if errors.Is(err, zds.ErrInvalidMessage) {
				c.log.Warn("bad zds request", "error", err)
				if err := conn.SendAck(ctx, err); err != nil {
					return fmt.Errorf("send zds ack: %w", err)
				}
				continue
			}
			return fmt.Errorf("receive zds request: %w", err)
		}
		var reqErr error
		switch p := req.GetPayload().(type) {
		case *zdsapi.WorkloadRequest_Add:
			reqErr = m.Add(ctx, p.Add.GetUid(), p.Add.GetWorkloadInfo(), ns)
			ns = nil
		case *zdsapi.WorkloadRequest_Keep:
			reqErr = m.Keep(p.Keep.GetUid())
		case *zdsapi.WorkloadRequest_Del:
			m.Del(p.Del.GetUid())
		case *zdsapi.WorkloadRequest_SnapshotSent:
			m.snapshotSent()
		default:
			reqErr = errors.New("unknown zds request")
		}
		closeFile(ns)
		if reqErr != nil {
			c.log.Warn("zds request failed", "error", reqErr)
		}
		if err := conn.SendAck(ctx, reqErr); err != nil {
			return fmt.Errorf("send zds ack: %w", err)
		}
	}
}
