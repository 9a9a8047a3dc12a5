package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftmesh/weft/cni/agentapi"
)

// About is printed when the binary runs without CNI_COMMAND.
const About = "weft-cni: chained CNI plugin that enrolls pods in the Weft mesh"

// Versions are the CNI spec versions the plugin supports.
var Versions = version.VersionsStartingFrom("0.3.0")

// agent is the part of agentapi.Client the plugin uses.
type agent interface {
	Add(ctx context.Context, req agentapi.PodRequest) (*agentapi.AddResponse, error)
	Del(ctx context.Context, req agentapi.PodRequest) error
	Check(ctx context.Context, req agentapi.PodRequest) error
}

var _ agent = (*agentapi.Client)(nil)

// Plugin implements the CNI commands. Stdout receives results only.
type Plugin struct {
	Stdout io.Writer
	// NewAgent builds the agent client for a socket path (tests replace
	// it); nil means agentapi.NewClient.
	NewAgent func(socket string) agent
	// OpenLog builds the logger for a config; nil means a JSON logger on
	// the config's log file.
	OpenLog func(conf *Config) (*slog.Logger, func())
}

// Funcs returns the skel callbacks.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status}
}

func (p *Plugin) setup(args *skel.CmdArgs, needPrev bool) (*Config, *slog.Logger, func(), agent, error) {
	conf, err := parseConfig(args.StdinData, needPrev)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	openLog := p.OpenLog
	if openLog == nil {
		openLog = openFileLog
	}
	log, closeLog := openLog(conf)
	newAgent := p.NewAgent
	if newAgent == nil {
		newAgent = func(s string) agent { return agentapi.NewClient(s) }
	}
	return conf, log, closeLog, newAgent(conf.AgentSocket), nil
}

func podRequest(args *skel.CmdArgs, k *k8sArgs, prev types.Result) agentapi.PodRequest {
	return agentapi.PodRequest{
		ContainerID:  args.ContainerID,
		Netns:        args.Netns,
		IfName:       args.IfName,
		PodName:      string(k.K8S_POD_NAME),
		PodNamespace: string(k.K8S_POD_NAMESPACE),
		PodUID:       string(k.K8S_POD_UID),
		IPs:          resultIPs(prev),
	}
}

// Add implements CNI ADD.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, log, closeLog, ag, err := p.setup(args, true)
	if err != nil {
		return err
	}
	defer closeLog()
	k, err := parseK8sArgs(args.Args)
	if err != nil {
		return err
	}
	log = log.With("container_id", args.ContainerID, "pod", string(k.K8S_POD_NAME), "namespace", string(k.K8S_POD_NAMESPACE))
	if k.K8S_POD_NAMESPACE == "" || k.K8S_POD_NAME == "" {
		log.Info("not a kubernetes pod; passing through")
		return p.print(conf)
	}
	if args.Netns == "" {
		return types.NewError(types.ErrInvalidNetNS, "weft-cni: CNI_NETNS is empty", "")
	}
	req := podRequest(args, k, conf.PrevResult)
	ctx, cancel := context.WithTimeout(context.Background(), conf.addTimeout)
	defer cancel()
	resp, err := ag.Add(ctx, req)
	switch {
	case errors.Is(err, agentapi.ErrUnreachable):
		return p.agentDown(conf, log, req, err)
	case err != nil:
		log.Error("enrollment failed", "err", err)
		return types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("weft-cni: enrolling pod %s/%s in the mesh failed: %v", req.PodNamespace, req.PodName, err),
			"the pod is not started outside the mesh; the kubelet retries. Check the weft-cni-agent and ztunnel logs on this node")
	}
	log.Info("agent answered", "enrolled", resp.Enrolled, "message", resp.Message)
	return p.print(conf)
}

// agentDown decides ADD when the agent is unreachable.
func (p *Plugin) agentDown(conf *Config, log *slog.Logger, req agentapi.PodRequest, cause error) error {
	e, err := agentapi.ReadEnrollment(conf.EnrollmentFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error("agent unreachable and enrollment file unreadable; refusing", "err", err, "cause", cause)
		return types.NewError(types.ErrTryAgainLater,
			"weft-cni: the node agent is unreachable and its enrollment file is unreadable", err.Error())
	}
	if e.NamespaceEnrolled(req.PodNamespace) {
		log.Error("agent unreachable for a pod in an enrolled namespace; refusing", "cause", cause)
		return types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("weft-cni: namespace %s is in the mesh but the weft-cni-agent on this node is unreachable (%s); the pod will not start outside the mesh",
				req.PodNamespace, conf.AgentSocket),
			"start or fix the weft-cni-agent DaemonSet pod on this node; the kubelet retries")
	}
	log.Warn("agent unreachable; namespace not enrolled, passing through", "cause", cause)
	return p.print(conf)
}

// Del implements CNI DEL. It never fails because of the agent: the sandbox
// is going away either way, and the agent also notices the pod deletion.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, log, closeLog, ag, err := p.setup(args, false)
	if err != nil {
		return err
	}
	defer closeLog()
	k, err := parseK8sArgs(args.Args)
	if err != nil || k.K8S_POD_NAMESPACE == "" || k.K8S_POD_NAME == "" {
		return nil
	}
	req := podRequest(args, k, conf.PrevResult)
	ctx, cancel := context.WithTimeout(context.Background(), conf.addTimeout)
	defer cancel()
	if err := ag.Del(ctx, req); err != nil {
		log.Warn("agent did not take the delete", "pod", req.PodName, "namespace", req.PodNamespace, "err", err)
	}
	return nil
}

// Check implements CNI CHECK: an enrolled pod's capture must be intact.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, log, closeLog, ag, err := p.setup(args, true)
	if err != nil {
		return err
	}
	defer closeLog()
	k, err := parseK8sArgs(args.Args)
	if err != nil {
		return err
	}
	if k.K8S_POD_NAMESPACE == "" || k.K8S_POD_NAME == "" {
		return nil
	}
	req := podRequest(args, k, conf.PrevResult)
	ctx, cancel := context.WithTimeout(context.Background(), conf.addTimeout)
	defer cancel()
	err = ag.Check(ctx, req)
	if errors.Is(err, agentapi.ErrUnreachable) {
		e, _ := agentapi.ReadEnrollment(conf.EnrollmentFile)
		if !e.NamespaceEnrolled(req.PodNamespace) {
			return nil
		}
	}
	if err != nil {
		log.Error("check failed", "pod", req.PodName, "namespace", req.PodNamespace, "err", err)
		return types.NewError(types.ErrTryAgainLater, "weft-cni: check failed", err.Error())
	}
	return nil
}

// Status implements CNI STATUS. The plugin is always able to serve ADD:
// pods outside the mesh never need the agent, and enrolled pods get a
// precise error from ADD when it is missing, instead of the whole node
// being marked not ready.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	_, err := parseConfig(args.StdinData, false)
	return err
}

// print writes the previous result, unchanged, in the config's version.
func (p *Plugin) print(conf *Config) error {
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "weft-cni: no prevResult to pass through", "")
	}
	r, err := conf.PrevResult.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, "weft-cni: cannot convert prevResult", err.Error())
	}
	return r.PrintTo(p.Stdout)
}

func currentResult(r types.Result) (*current.Result, error) {
	return current.NewResultFromResult(r)
}
