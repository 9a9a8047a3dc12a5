package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ErrUnreachable marks a failure to connect to the agent's socket (no
// socket file, nobody listening): the agent is not running.
var ErrUnreachable = errors.New("weft-cni-agent unreachable")

// Client calls the agent over its unix socket. Safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
			}
			return c, nil
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Add asks the agent to enroll the pod if it should be, and waits for the
// answer until ctx is done.
func (c *Client) Add(ctx context.Context, req PodRequest) (*AddResponse, error) {
	var resp AddResponse
	if err := c.post(ctx, PathAdd, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Del tells the agent the pod's sandbox is going away.
func (c *Client) Del(ctx context.Context, req PodRequest) error {
	return c.post(ctx, PathDel, req, nil)
}

// Check asks the agent whether an enrolled pod's capture is intact.
func (c *Client) Check(ctx context.Context, req PodRequest) error {
	return c.post(ctx, PathCheck, req, nil)
}

// Healthy reports nil when the agent answers its health endpoint.
func (c *Client) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://weft-cni-agent"+PathHealth, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return unwrapURL(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent health: %s", resp.Status)
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://weft-cni-agent"+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(r)
	if err != nil {
		return unwrapURL(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read agent response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("agent: %s", e.Error)
		}
		return fmt.Errorf("agent: %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decode agent response: %w", err)
		}
	}
	return nil
}

// unwrapURL drops net/http's *url.Error wrapper so ErrUnreachable and
// context errors stay visible to errors.Is.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
