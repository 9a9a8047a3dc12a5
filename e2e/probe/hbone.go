package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

// HBONEConfig configures one HBONE attempt.
type HBONEConfig struct {
	// Addr is the HBONE listener (ip:15008).
	Addr string
	// Authority is the CONNECT target (the workload's ip:port).
	Authority string
	// Cert and Key are PEM files of the client certificate presented
	// (chain first, leaf first); empty presents none.
	Cert, Key string
	// Headers are extra CONNECT request headers ("Name: value").
	Headers []string
	// Timeout bounds the whole attempt.
	Timeout time.Duration
}

// Stage is how far an HBONE attempt got.
type Stage string

// The stages of an HBONE attempt, in order.
const (
	// StageDial: the TCP connection failed.
	StageDial Stage = "dial"
	// StageTLS: the TLS handshake, or the connection right after it, was
	// refused before any answer to CONNECT (in TLS 1.3 the server's
	// verdict on the client certificate arrives after the client's side
	// of the handshake is done).
	StageTLS Stage = "tls"
	// StageConnect: the CONNECT request was answered with a non-200 status
	// or the stream was refused or reset.
	StageConnect Stage = "connect"
	// StageTunnel: CONNECT was answered 200 but no application data came.
	StageTunnel Stage = "tunnel"
	// StageData: the application behind the tunnel answered — the attempt
	// got in.
	StageData Stage = "data"
)

// HBONEResult reports an HBONE attempt.
type HBONEResult struct {
	Stage  Stage  `json:"stage"`
	Status int    `json:"status,omitempty"`
	Err    string `json:"err,omitempty"`
	// Data is the first line the application sent through the tunnel.
	Data string `json:"data,omitempty"`
}

// HBONE makes one attempt. Errors of the attempt itself are reported in
// the result; the error return is for a bad configuration only.
func HBONE(ctx context.Context, cfg HBONEConfig) (HBONEResult, error) {
	if cfg.Addr == "" || cfg.Authority == "" {
		return HBONEResult{}, errors.New("hbone: need an address and an authority")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	tc := &tls.Config{
		InsecureSkipVerify: true, // the attacker does not care who answers
		NextProtos:         []string{"h2"},
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return HBONEResult{}, fmt.Errorf("hbone: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	hdr := http.Header{}
	for _, h := range cfg.Headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return HBONEResult{}, fmt.Errorf("hbone: header %q: want \"Name: value\"", h)
		}
		hdr.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return HBONEResult{Stage: StageDial, Err: err.Error()}, nil
	}
	defer func() { _ = raw.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		return HBONEResult{Stage: StageTLS, Err: err.Error()}, nil
	}
	// In TLS 1.3 the server's verdict on the client certificate arrives
	// after the client's handshake is done: the HTTP/2 exchange shows it.
	tr := &http2.Transport{}          //nolint:staticcheck // a raw HTTP/2 client connection over this very TLS connection is the point
	cc, err := tr.NewClientConn(conn) //nolint:staticcheck // as above
	if err != nil {
		return HBONEResult{Stage: StageTLS, Err: err.Error()}, nil
	}
	defer func() { _ = cc.Close() }()
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Host: cfg.Authority},
		Host:   cfg.Authority,
		Header: hdr,
		Body:   pr,
	}
	req = req.WithContext(ctx)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		// A reset of the stream is an answer to CONNECT; anything else
		// took the whole connection down before one came.
		stage := StageTLS
		var se http2.StreamError
		if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) {
			stage = StageConnect
		}
		return HBONEResult{Stage: stage, Err: err.Error()}, nil
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return HBONEResult{Stage: StageConnect, Status: resp.StatusCode}, nil
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if line == "" {
		res := HBONEResult{Stage: StageTunnel, Status: resp.StatusCode}
		if err != nil {
			res.Err = err.Error()
		}
		return res, nil
	}
	return HBONEResult{Stage: StageData, Status: resp.StatusCode, Data: strings.TrimSpace(line)}, nil
}
