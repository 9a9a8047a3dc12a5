// Command weft-cni is the chained CNI plugin of Weft. The container runtime
// runs it; see package cni/plugin.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/weftmesh/weft/cni/plugin"
)

func main() {
	p := &plugin.Plugin{Stdout: os.Stdout}
	skel.PluginMainFuncs(p.Funcs(), plugin.Versions, plugin.About)
}
