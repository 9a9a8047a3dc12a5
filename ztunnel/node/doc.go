// Package node runs ztunnel, the node proxy: it wires the xDS state, the
// certificate manager and CA client, the HBONE tunnels, the proxy, the ZDS
// client and in-pod listeners, and the admin, readiness and metrics
// servers, and drains gracefully on shutdown.
package node
