package lab

import (
	_ "embed"
	"strings"
)

//go:embed manifests/coredns.yaml
var corednsManifest string

// corednsYAML renders the cluster DNS manifests.
func corednsYAML() string {
	return strings.NewReplacer(
		"{{DOMAIN}}", ClusterDomain,
		"{{IMAGE}}", CoreDNSImage+":"+CoreDNSVersion,
		"{{DNS_IP}}", ClusterDNS,
	).Replace(corednsManifest)
}
