// Package zdump decodes ztunnel's admin /config_dump and turns its sections
// into the tables `istioctl ztunnel-config` prints: workloads, services,
// policies, certificates and connections, with the filters users know.
package zdump
