// Package bench is Weft's whole-mesh benchmark: it starts a 2-node lab,
// installs Weft from the manifests, deploys load generators and servers
// on different nodes, and measures each scenario beside its baseline in
// the same run, alternating their order over the repetitions:
//
//   - latency: open-loop 1 KiB HTTP/1.1 at fixed rates over 1 and 16
//     connections, cross-node: direct, L4 mesh, L4 + waypoint, a plain TLS
//     relay pair, and an nginx reverse-proxy hop;
//   - throughput: 1 and 8 connection bulk transfer: direct, L4 mesh and the
//     plain TLS relay pair (the floor of this architecture);
//   - connection rate: new connections per second, direct and L4 mesh;
//   - data-plane cost: ztunnel and waypoint CPU and resident memory from
//     /proc per 1,000 rps, idle and holding many connections, against the
//     relay pair and nginx doing the same job;
//   - control plane on the running mesh: a pod change to every ztunnel's
//     ACK (read from istiod-lite's debug view of each connection's held
//     and unacknowledged versions), `kubectl label ns` to every pod's
//     traffic in mTLS, and the same propagation and istiod-lite's CPU and
//     memory under pod churn at 20/s, beside at rest and idle;
//   - control plane at scale: istiod-lite at 1,000 and 5,000 pods through
//     e2e/controlplane's BenchmarkScale, when asked for.
//
// Run writes a human table, a JSON report (Report) and docs/performance.md
// generated from it. cmd/weft-bench is the command line.
package bench
