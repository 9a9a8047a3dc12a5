// Command fakeprimary stands in for a primary CNI plugin in weft-cni's
// tests: ADD returns a fixed interface and address, other commands succeed.
package main

import (
	"encoding/json"
	"net"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

func add(args *skel.CmdArgs) error {
	var conf types.PluginConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return err
	}
	ip, ipn, _ := net.ParseCIDR("10.88.0.5/24")
	ipn.IP = ip
	idx := 0
	r := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: args.IfName, Mac: "0a:58:0a:58:00:05", Sandbox: args.Netns}},
		IPs:        []*current.IPConfig{{Interface: &idx, Address: *ipn, Gateway: net.ParseIP("10.88.0.1")}},
	}
	out, err := r.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return err
	}
	return out.PrintTo(os.Stdout)
}

func ok(*skel.CmdArgs) error { return nil }

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: add, Del: ok, Check: ok, Status: ok}, version.All, "fake primary")
}
