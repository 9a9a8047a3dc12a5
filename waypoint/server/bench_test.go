package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
)

// BenchmarkWaypointHop sends GETs through the waypoint (client → waypoint
// → backend ztunnel → server, two HBONE hops) and, alternately in the same
// loop, directly (client → backend ztunnel → server, the L4 path), and
// reports both latencies, the added p50/p99 and their ratio.
//
//	go test -run='^$' -bench=WaypointHop -benchtime=2000x ./waypoint/server
func BenchmarkWaypointHop(b *testing.B) { benchHop(b, getFixed) }

// BenchmarkWaypointHopPOST is BenchmarkWaypointHop with the lab bench's
// request: a 1 KiB POST answered with 1 KiB.
func BenchmarkWaypointHopPOST(b *testing.B) { benchHop(b, postKiB) }

// getFixed sends a GET of /fixed (12 bytes of known length).
func getFixed(c *http.Client, hostPort string) (*http.Response, error) {
	return c.Get("http://" + hostPort + "/fixed")
}

// postKiB sends what the lab bench sends: a 1 KiB POST to /kib, which
// answers 1 KiB.
func postKiB(c *http.Client, hostPort string) (*http.Response, error) {
	return c.Post("http://"+hostPort+"/kib", "application/octet-stream", bytes.NewReader(kib))
}

var kib = make([]byte, 1024)

func benchHop(b *testing.B, send func(c *http.Client, hostPort string) (*http.Response, error)) {
	m := newMesh(b)
	via := m.httpClient(false)
	direct := m.directClient(b)
	get := func(c *http.Client, url string) time.Duration {
		start := time.Now()
		resp, err := send(c, url)
		readOK(b, resp, err)
		return time.Since(start)
	}
	// Warm both pools.
	get(via, echoVIP)
	get(direct, "10.0.1.1:8080")
	var viaD, directD []time.Duration
	for b.Loop() {
		viaD = append(viaD, get(via, echoVIP))
		directD = append(directD, get(direct, "10.0.1.1:8080"))
	}
	p := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds())
	}
	mean := func(d []time.Duration) float64 {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return float64(s.Microseconds()) / float64(len(d))
	}
	b.ReportMetric(mean(viaD), "waypoint-us/req")
	b.ReportMetric(mean(directD), "direct-us/req")
	b.ReportMetric(mean(viaD)/mean(directD), "waypoint/direct")
	b.ReportMetric(p(viaD, 0.5)-p(directD, 0.5), "added-p50-us")
	b.ReportMetric(p(viaD, 0.99)-p(directD, 0.99), "added-p99-us")
}

// directClient sends requests over HBONE straight to the backends' ztunnel
// (with the waypoint's certificate, which that ztunnel admits).
func (m *mesh) directClient(tb testing.TB) *http.Client {
	pool, err := hbone.NewPool(hbone.PoolConfig{
		TLSConfig: func(hbone.Key) (*tls.Config, error) {
			return identity.ClientConfig(identity.ClientOptions{
				GetClientCertificate: identity.StaticCertificate(m.certs.certs[waypointID]),
				TrustDomain:          "cluster.local", Roots: m.certs.Roots, Expected: []identity.ID{backendID},
			})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	key := hbone.NewKey(waypointID.String(), []string{backendID.String()}, netip.MustParseAddrPort(m.zt.addr), netip.Addr{})
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) { return pool.Dial(ctx, key, a, nil) },
		Protocols:   new(http.Protocols),
	}
	tr.Protocols.SetHTTP1(true)
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// readOK reads away a response's body and fails b unless the request
// succeeded with 200.
func readOK(b *testing.B, resp *http.Response, err error) {
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}
