package echo

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClientConfig configures one client run: either URL (HTTP) or TCPAddr.
type ClientConfig struct {
	// URL is an http:// or https:// URL to call.
	URL string
	// H2C uses cleartext HTTP/2 with prior knowledge for http:// URLs.
	H2C bool
	// Method is the HTTP method (default GET).
	Method string
	// Headers are "Name: value" request headers.
	Headers []string
	// CACert verifies an https server; Cert and Key are a client
	// certificate; Insecure skips verification.
	CACert, Cert, Key string
	Insecure          bool

	// TCPAddr is a host:port for the raw TCP echo; Message is what to send.
	TCPAddr, Message string
	// UDPAddr is a host:port for the UDP echo; Message is what to send.
	UDPAddr string
	// GRPCAddr is a host:port for the gRPC echo.
	GRPCAddr string

	// GRPCStream, when positive, calls GRPCStreamMethod asking for that
	// many messages instead of the unary method.
	GRPCStream int

	// Count is how many requests or connections to make (default 1).
	Count int
	// Concurrency is how many calls are in flight at once (default 1).
	Concurrency int
	// Summary writes one Summary of all calls instead of a Result per
	// call, and counts failed calls instead of stopping at the first.
	Summary bool
	// Timeout bounds each request or connection (default 5s).
	Timeout time.Duration
}

// Validate reports what is wrong with c.
func (c ClientConfig) Validate() error {
	n := 0
	for _, t := range []string{c.URL, c.TCPAddr, c.UDPAddr, c.GRPCAddr} {
		if t != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("set exactly one of --url, --tcp, --udp and --grpc")
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("url %q: want http:// or https://", c.URL)
	}
	for _, h := range c.Headers {
		if !strings.Contains(h, ":") {
			return fmt.Errorf("header %q: want \"Name: value\"", h)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("a client certificate needs both --cert and --key")
	}
	return nil
}

// Result is one line of client output.
type Result struct {
	// Status is the HTTP status code (0 for TCP).
	Status int `json:"status,omitempty"`
	// Proto is the response protocol ("HTTP/1.1", "HTTP/2.0", "tcp", "grpc").
	Proto string `json:"proto"`
	// Reply is the server's JSON reply, when the body was one.
	Reply *Reply `json:"reply,omitempty"`
	// Body is the body when it was not a Reply.
	Body string `json:"body,omitempty"`
	// Echo is what came back over TCP after the identity line.
	Echo *string `json:"echo,omitempty"`
	// Headers are the HTTP response headers.
	Headers map[string][]string `json:"headers,omitempty"`
	// Messages is how many messages a gRPC stream delivered.
	Messages int `json:"messages,omitempty"`
	// Millis is how long the call took, in milliseconds.
	Millis float64 `json:"ms"`
}

// Summary aggregates the calls of one client run (ClientConfig.Summary).
type Summary struct {
	Calls  int `json:"calls"`
	Errors int `json:"errors"`
	// Status counts HTTP status codes (by code as a string).
	Status map[string]int `json:"status,omitempty"`
	// Pods and Versions count replies by serving pod and version.
	Pods     map[string]int `json:"pods,omitempty"`
	Versions map[string]int `json:"versions,omitempty"`
	// FirstError is the first transport error's text.
	FirstError string `json:"firstError,omitempty"`
	// P50Millis and MaxMillis are call latencies.
	P50Millis float64 `json:"p50ms"`
	MaxMillis float64 `json:"maxms"`
}

// RunClient makes the configured calls and writes one JSON Result per line
// to w (or, with Summary, one JSON Summary). Without Summary it fails on the
// first transport error.
func RunClient(ctx context.Context, c ClientConfig, w io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Count <= 0 {
		c.Count = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	var call func(context.Context) (Result, error)
	switch {
	case c.URL != "":
		hc, err := httpClient(c)
		if err != nil {
			return err
		}
		defer hc.CloseIdleConnections()
		call = func(ctx context.Context) (Result, error) { return httpCall(ctx, hc, c) }
	case c.GRPCAddr != "" && c.GRPCStream > 0:
		call = func(ctx context.Context) (Result, error) { return grpcStream(ctx, c.GRPCAddr, c.GRPCStream) }
	case c.GRPCAddr != "":
		call = func(ctx context.Context) (Result, error) { return grpcCall(ctx, c.GRPCAddr, c.Message) }
	case c.UDPAddr != "":
		call = func(ctx context.Context) (Result, error) { return udpCall(ctx, c) }
	default:
		call = func(ctx context.Context) (Result, error) { return tcpCall(ctx, c) }
	}
	timed := func(ctx context.Context) (Result, error) {
		cctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		start := time.Now()
		res, err := call(cctx)
		res.Millis = float64(time.Since(start).Microseconds()) / 1000
		return res, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		sum      = Summary{Status: map[string]int{}, Pods: map[string]int{}, Versions: map[string]int{}}
		millis   []float64
		enc      = json.NewEncoder(w)
		wg       sync.WaitGroup
	)
	for range c.Concurrency {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= c.Count || (firstErr != nil && !c.Summary) {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				res, err := timed(ctx)
				mu.Lock()
				sum.Calls++
				millis = append(millis, res.Millis)
				switch {
				case err != nil:
					sum.Errors++
					if firstErr == nil {
						firstErr = err
						sum.FirstError = err.Error()
					}
					if !c.Summary {
						cancel()
					}
				case c.Summary:
					if res.Status != 0 {
						sum.Status[strconv.Itoa(res.Status)]++
					}
					if res.Reply != nil {
						sum.Pods[res.Reply.Pod.Name]++
						if res.Reply.Pod.Version != "" {
							sum.Versions[res.Reply.Pod.Version]++
						}
					}
				default:
					if err := enc.Encode(res); err != nil && firstErr == nil {
						firstErr = fmt.Errorf("write result: %w", err)
						cancel()
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if !c.Summary {
		return firstErr
	}
	slices.Sort(millis)
	if n := len(millis); n > 0 {
		sum.P50Millis, sum.MaxMillis = millis[n/2], millis[n-1]
	}
	if err := enc.Encode(sum); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func httpClient(c ClientConfig) (*http.Client, error) {
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: true}
	tc := &tls.Config{InsecureSkipVerify: c.Insecure} //nolint:gosec // an explicit test-client flag
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CACert)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		kp, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	tr.TLSClientConfig = tc
	if c.H2C {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols.SetHTTP2(true)
	}
	return &http.Client{Transport: tr}, nil
}

func httpCall(ctx context.Context, hc *http.Client, c ClientConfig) (Result, error) {
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("build request: %w", err)
	}
	for _, h := range c.Headers {
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(strings.TrimSpace(k), "Host") {
			req.Host = strings.TrimSpace(v)
			continue
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", method, c.URL, err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only; the read error is checked
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("read response: %w", err)
	}
	res := Result{Status: resp.StatusCode, Proto: resp.Proto, Headers: resp.Header}
	var rep Reply
	if json.Unmarshal(body, &rep) == nil && rep.Protocol != "" {
		res.Reply = &rep
	} else {
		res.Body = string(body)
	}
	return res, nil
}

func tcpCall(ctx context.Context, c ClientConfig) (Result, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.TCPAddr)
	if err != nil {
		return Result{}, fmt.Errorf("dial %s: %w", c.TCPAddr, err)
	}
	defer func() { _ = conn.Close() }() // every read and write below is checked
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return Result{}, fmt.Errorf("read identity line from %s: %w", c.TCPAddr, err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return Result{}, fmt.Errorf("parse identity line from %s: %w", c.TCPAddr, err)
	}
	if _, err := io.WriteString(conn, c.Message); err != nil {
		return Result{}, fmt.Errorf("send to %s: %w", c.TCPAddr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	echoed, err := io.ReadAll(io.LimitReader(br, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("read echo from %s: %w", c.TCPAddr, err)
	}
	s := string(echoed)
	return Result{Proto: "tcp", Reply: &rep, Echo: &s}, nil
}
