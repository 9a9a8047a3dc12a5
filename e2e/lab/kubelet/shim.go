package kubelet

// shimCommand is the hidden subcommand of ShimPath that runs ShimMain.
const shimCommand = "kubelet-shim"

// shimSpec tells the shim how to start one container. The kubelet writes it
// as JSON into the pod's state dir and passes its path.
type shimSpec struct {
	// NetNS is the pod netns path; empty for hostNetwork pods.
	NetNS string `json:",omitempty"`
	// Hostname, when set, is applied in a new UTS namespace.
	Hostname string `json:",omitempty"`
	// Scratch is an existing host directory the shim may mount a tmpfs on
	// (inside its private mount namespace) to stage mountpoints.
	Scratch string
	// Mounts are bind mounts applied in order.
	Mounts []shimMount `json:",omitempty"`
	// Path is the binary; Args is argv including argv[0].
	Path string
	Args []string
	Env  []string `json:",omitempty"`
	// WorkDir is the working directory ("/" if empty).
	WorkDir string `json:",omitempty"`
}

// shimMount bind-mounts Source (a host path) at Target in the container.
type shimMount struct {
	Source   string
	Target   string
	ReadOnly bool `json:",omitempty"`
}
