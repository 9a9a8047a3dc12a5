// Package inpod gives ztunnel its sockets inside enrolled pods' network
// namespaces. Client speaks ZDS to the node agent (dial with back-off,
// hello, snapshot, add/keep/del, an ack for each, and after snapshot_sent
// the removal of pods it was not told about). Manager keeps one Pod per
// enrolled pod: it opens the pod's listeners inside the pod's netns (15001
// outbound, 15006 inbound plaintext, 15008 inbound HBONE; each one
// dual-stack socket on [::], IPv4 arriving v4-mapped, or 0.0.0.0 where the
// netns has no IPv6; SO_REUSEPORT so a replacement ztunnel can bind beside a
// draining one), marks every socket it
// creates there with SO_MARK 0x539 so the in-pod redirect rules let it
// through, hands the pod to a Handler that serves the listeners, and drains
// the pod when it is removed.
package inpod
