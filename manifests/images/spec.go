package images

// Users the images run as.
const (
	// NonRootUser is the numeric user and group of every component that
	// needs no privilege (the distroless "nonroot" ids).
	NonRootUser = "65532:65532"
	// RootUser is for node agents that need capabilities only root gets
	// by default; their manifests drop every capability they do not need.
	RootUser = "0:0"
)

// BinDir is where binaries live inside the images.
const BinDir = "/usr/local/bin"

// Spec describes one image.
type Spec struct {
	// Name is the image name and the binary run as its entrypoint.
	Name string
	// Extra names more binaries copied beside it (e.g. the CNI plugin the
	// node agent installs onto the host).
	Extra []string
	// User is "uid:gid"; NonRootUser unless the binary needs root.
	User string
	// Description becomes the org.opencontainers.image.description label.
	Description string
	// Privileges, when the image runs as root, says why; it becomes the
	// io.weftmesh.privileges label.
	Privileges string
	// HostTools are programs and folders copied from the build machine,
	// with the shared libraries and loader they need, into a layer of
	// their own ({multiarch} expands to the Debian multiarch triplet). For
	// the few components that run a distribution's tool.
	HostTools []string
}

// IPTablesTools are the iptables programs (nft and legacy flavours, with
// their extension modules) the CNI agent runs to program pod network
// namespaces; the build machine must have Debian's iptables package.
var IPTablesTools = []string{
	"/usr/sbin/iptables", "/usr/sbin/iptables-save", "/usr/sbin/iptables-restore",
	"/usr/sbin/iptables-nft", "/usr/sbin/iptables-nft-save", "/usr/sbin/iptables-nft-restore",
	"/usr/sbin/iptables-legacy", "/usr/sbin/iptables-legacy-save", "/usr/sbin/iptables-legacy-restore",
	"/usr/lib/{multiarch}/xtables",
}

// DefaultSpecs are the images Weft ships.
func DefaultSpecs() []Spec {
	return []Spec{
		{
			Name: "istiod-lite", User: NonRootUser,
			Description: "Weft control plane: ambient workload discovery (delta xDS) and the mesh CA",
		},
		{
			Name: "ztunnel", User: RootUser,
			Description: "Weft node proxy: carries enrolled pods' TCP traffic over HBONE",
			Privileges: "root with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_NET_RAW only: it opens listeners " +
				"inside pod network namespaces from descriptors it receives (setns), marks its sockets " +
				"(SO_MARK) and binds transparent (spoofed-source) sockets",
		},
		{
			Name: "weft-cni-agent", Extra: []string{"weft-cni"}, User: RootUser, HostTools: IPTablesTools,
			Description: "Weft CNI node agent and chained CNI plugin",
			Privileges: "root, privileged: installs the CNI plugin into the host's CNI folders and " +
				"programs iptables (carried in the image with its libraries) and routes inside pod network " +
				"namespaces found through the host's /proc",
		},
		{
			Name: "waypoint", User: NonRootUser,
			Description: "Weft waypoint: per-namespace L7 proxy",
		},
		{
			Name: "weftctl", User: NonRootUser,
			Description: "Weft command-line tool",
		},
		{
			Name: "echo", User: NonRootUser,
			Description: "Weft sample workload: TCP and HTTP echo client and server",
		},
	}
}

// binaries lists every binary of s, the entrypoint first.
func (s Spec) binaries() []string {
	return append([]string{s.Name}, s.Extra...)
}
