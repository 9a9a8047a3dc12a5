package check

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// Status is a check's outcome.
type Status string

// The outcomes, named as linkerd's JSON output names them.
const (
	OK      Status = "success"
	Warning Status = "warning"
	Error   Status = "error"
)

// Result is one check's outcome.
type Result struct {
	Description string `json:"description"`
	Status      Status `json:"result"`
	// Message says what is wrong (empty on success).
	Message string `json:"error,omitempty"`
	// Hint says what to do about it.
	Hint string `json:"hint,omitempty"`
}

// Category is a group of results.
type Category struct {
	Name    string   `json:"categoryName"`
	Results []Result `json:"checks"`
}

// Report is every category's results; Success is false on any Error.
type Report struct {
	Success    bool       `json:"success"`
	Categories []Category `json:"categories"`
}

// Deps are what the checks read. Clients errors are reported by the
// caller; the checks assume working clients.
type Deps struct {
	Kube     kubernetes.Interface
	Gateway  gatewayclient.Interface
	HTTP     kube.PodHTTP
	SystemNS string
	Now      time.Time
	// CertWarn is how close to expiry a certificate is flagged (default
	// 30 minutes).
	CertWarn time.Duration
}

// MinKubeMinor is the oldest supported Kubernetes 1.x minor version.
const MinKubeMinor = 30

// run holds per-run state shared by checks (ztunnel dumps by node).
type run struct {
	d     Deps
	dumps map[string]dumpResult
}

type dumpResult struct {
	pod  string
	dump *zdump.Dump
	err  error
}

// checker produces one category; stop reports whether later categories
// are pointless (the API server cannot be reached).
type checker func(ctx context.Context, r *run) (cat Category, stop bool)

// Run runs the post-install checks, or with pre the pre-install ones.
func Run(ctx context.Context, d Deps, pre bool) Report {
	if d.CertWarn == 0 {
		d.CertWarn = 30 * time.Minute
	}
	r := &run{d: d, dumps: map[string]dumpResult{}}
	checkers := []checker{kubernetesAPI, crds, controlPlane, dataPlane, workloads}
	if pre {
		checkers = []checker{kubernetesAPI, preInstall}
	}
	rep := Report{Success: true}
	for _, c := range checkers {
		cat, stop := c(ctx, r)
		rep.Categories = append(rep.Categories, cat)
		if stop {
			break
		}
	}
	for _, c := range rep.Categories {
		for _, res := range c.Results {
			if res.Status == Error {
				rep.Success = false
			}
		}
	}
	return rep
}

// ClientError is the report when the clients could not be built at all.
func ClientError(err error) Report {
	return Report{Success: false, Categories: []Category{{Name: "kubernetes-api", Results: []Result{{
		Description: "can initialize the client", Status: Error, Message: err.Error(),
		Hint: "point weftctl at the cluster with --kubeconfig/--context or KUBECONFIG",
	}}}}}
}

func ok(desc string) Result { return Result{Description: desc, Status: OK} }

func fail(desc, msg, hint string) Result {
	return Result{Description: desc, Status: Error, Message: msg, Hint: hint}
}

func warn(desc, msg, hint string) Result {
	return Result{Description: desc, Status: Warning, Message: msg, Hint: hint}
}
