package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
)

// BenchmarkCreateCertificate measures CSR signings per second and p99
// latency of the CA at three depths, the first being the baseline:
//
//	x509     — x509.CreateCertificate with the CA key alone (the crypto floor)
//	handler  — the whole request handler: token (cached), CSR checks, authz, signing
//	grpc-tls — a real CreateCertificate RPC over loopback gRPC+TLS
//	grpc-tls-parallel — the same from GOMAXPROCS concurrent callers
//
// Each reports signings/s, p99-µs and x-baseline (its time per op divided
// by the baseline's, measured in the same run).
func BenchmarkCreateCertificate(b *testing.B) {
	fc := newFakeCluster()
	ca := startCA(b, fc, nil)
	const app = "spiffe://cluster.local/ns/demo/sa/app"
	csrPEM := mustCSR(b, app)
	csr, _, err := identity.ParseCSR(csrPEM)
	if err != nil {
		b.Fatal(err)
	}
	appURL, _ := url.Parse(app)
	req := &pb.IstioCertificateRequest{Csr: string(csrPEM)}
	inCtx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer tok-app"))
	client := rawClient(b, ca)
	outCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok-app")

	var baseline float64 // ns/op of x509
	run := func(b *testing.B, op func() error) {
		lat := make([]time.Duration, 0, b.N)
		start := time.Now()
		for b.Loop() {
			t0 := time.Now()
			if err := op(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		elapsed := time.Since(start)
		slices.Sort(lat)
		p99 := lat[min(len(lat)-1, len(lat)*99/100)]
		nsPerOp := float64(elapsed.Nanoseconds()) / float64(len(lat))
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "signings/s")
		b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		if baseline == 0 {
			baseline = nsPerOp
		}
		b.ReportMetric(nsPerOp/baseline, "x-baseline")
	}

	b.Run("x509", func(b *testing.B) {
		a := ca.srv.authority
		run(b, func() error {
			serial, err := randomSerial()
			if err != nil {
				return err
			}
			now := time.Now()
			tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now, NotAfter: now.Add(24 * time.Hour), URIs: []*url.URL{appURL}}
			_, err = x509.CreateCertificate(rand.Reader, tmpl, a.cert, csr.PublicKey, a.key)
			return err
		})
	})
	b.Run("handler", func(b *testing.B) {
		svc := &service{s: ca.srv}
		run(b, func() error {
			_, err := svc.CreateCertificate(inCtx, req)
			return err
		})
	})
	b.Run("grpc-tls", func(b *testing.B) {
		run(b, func() error {
			_, err := client.CreateCertificate(outCtx, req)
			return err
		})
	})
	// Throughput with concurrent callers (GOMAXPROCS goroutines), as when
	// many ztunnels renew at once.
	b.Run("grpc-tls-parallel", func(b *testing.B) {
		var (
			mu  sync.Mutex
			lat []time.Duration
		)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				t0 := time.Now()
				if _, err := client.CreateCertificate(outCtx, req); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		elapsed := time.Since(start)
		if len(lat) == 0 {
			return
		}
		slices.Sort(lat)
		nsPerOp := float64(elapsed.Nanoseconds()) / float64(len(lat))
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "signings/s")
		b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
		b.ReportMetric(nsPerOp/baseline, "x-baseline")
	})
}
