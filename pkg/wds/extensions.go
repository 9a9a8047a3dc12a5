package wds

import "github.com/weftmesh/weft/pkg/api/workloadapi"

// ExtensionHBONEQUIC is the name of the Workload extension by which the
// control plane advertises that the workload can be reached with HBONE
// over QUIC (HTTP/3 CONNECT on UDP 15008) as well as over HTTP/2. The
// extension carries no configuration; its presence is the advertisement.
const ExtensionHBONEQUIC = "weft.dev/hbone-quic"

// HasExtension reports whether exts contains an extension named name.
func HasExtension(exts []*workloadapi.Extension, name string) bool {
	for _, e := range exts {
		if e.GetName() == name {
			return true
		}
	}
	return false
}
