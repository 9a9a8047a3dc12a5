// Package tunnel connects ztunnel's proxy to pkg/hbone and pkg/hbone3:
// Client opens outbound HBONE streams from pooled connections dialled
// inside the source pod's netns with the pod's certificate — HTTP/3 over
// QUIC when the destination workload advertises it (wds.Workload.QUIC),
// HTTP/2 otherwise or after a failed QUIC handshake — and CONNECT-UDP
// flows; Server serves a pod's 15008 listeners (TCP and, with QUIC, UDP)
// with that pod's certificate, handing each CONNECT to the proxy and each
// CONNECT-UDP to Config.HandleUDP.
package tunnel
