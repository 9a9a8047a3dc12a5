// Package zds speaks ZDS, the protocol with which the node agent hands
// ztunnel the network namespaces of enrolled pods.
//
// ZDS runs over a SOCK_SEQPACKET unix socket (the agent listens, ztunnel
// dials). Every packet carries exactly one protobuf message from
// github.com/weftmesh/weft/pkg/api/zdsapi; an AddWorkload request carries
// exactly one network namespace file descriptor as SCM_RIGHTS ancillary
// data. ztunnel opens with a ZdsHello, the agent then sends WorkloadRequests
// (a snapshot of adds or keeps ended by snapshot_sent, then live adds and
// deletes) and ztunnel answers each with a WorkloadResponse ack.
//
// Conn frames, validates and times out each message (DefaultTimeout, 5 s);
// it does not implement either side's state machine. The wire format matches
// Istio's istio.workload.zds, so each end interoperates with its Istio
// counterpart.
package zds
