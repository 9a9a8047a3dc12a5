package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// sandboxState is persisted in the pod dir so a restarted kubelet-lite
// can tear down what a previous run left.
type sandboxState struct {
	Namespace, Name, UID string
	NetNS                string   `json:",omitempty"`
	IPs                  []string `json:",omitempty"`
	CNIConf              []byte   `json:",omitempty"`
}

// netnsPath returns where a pod's netns is bind-mounted.
func netnsPath(cfg *Config, uid string) string {
	id := strings.ReplaceAll(uid, "-", "")
	if len(id) > 12 {
		id = id[:12]
	}
	if cfg.NetnsPrefix != "" {
		return filepath.Join("/var/run/netns", cfg.NetnsPrefix+"-"+id)
	}
	return filepath.Join(cfg.StateDir, "netns", id)
}

// sandboxID is the CNI container id for a pod.
func sandboxID(uid string) string {
	h := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(h[:16])
}

// resolvConf renders a pod's /etc/resolv.conf, or "" when the pod keeps
// the node's (hostNetwork with ClusterFirst, or dnsPolicy Default).
func resolvConf(pod *v1.Pod, clusterDNS, domain string) string {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	var servers, search, opts []string
	switch {
	case policy == v1.DNSDefault:
		return ""
	case policy == v1.DNSClusterFirst && pod.Spec.HostNetwork:
		return ""
	case policy == v1.DNSNone:
	default:
		if clusterDNS != "" {
			servers = []string{clusterDNS}
		}
		search = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		opts = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		search = append(search, dc.Searches...)
		for _, o := range dc.Options {
			if o.Value != nil {
				opts = append(opts, o.Name+":"+*o.Value)
			} else {
				opts = append(opts, o.Name)
			}
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.String()
}

// etcHosts renders a pod's /etc/hosts.
func etcHosts(pod *v1.Pod, ips []string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	host := pod.Spec.Hostname
	if host == "" {
		host = pod.Name
	}
	if pod.Spec.Subdomain != "" {
		host = fmt.Sprintf("%s.%s.%s.svc %s", host, pod.Spec.Subdomain, pod.Namespace, host)
	}
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, host)
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	return b.String()
}

// setupSandbox creates the pod netns and runs CNI ADD (for hostNetwork
// pods it only records the node IP), then writes resolv.conf and hosts.
func (w *podWorker) setupSandbox(ctx context.Context) error {
	pod := w.currentPod()
	cfg := w.k.cfg
	st := sandboxState{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}
	if pod.Spec.HostNetwork {
		st.IPs = []string{cfg.NodeIP}
	} else {
		st.NetNS = netnsPath(cfg, string(pod.UID))
		// Persist the intent first so a crash leaves a trace to clean.
		if err := writeJSON(filepath.Join(w.dir, "sandbox.json"), st); err != nil {
			return err
		}
		if err := createNetns(st.NetNS); err != nil {
			return err
		}
		if err := bindNetns(st.NetNS, filepath.Join(w.k.netnsView, filepath.Base(st.NetNS))); err != nil {
			w.teardownNetwork(ctx, st)
			return err
		}
		if err := setLoopbackUp(st.NetNS); err != nil {
			w.teardownNetwork(ctx, st)
			return err
		}
		ips, conf, err := w.k.net.Add(ctx, w.podNetwork(st.NetNS))
		st.CNIConf = conf
		if err != nil {
			w.teardownNetwork(ctx, st)
			return err
		}
		st.IPs = ips
	}
	if err := writeJSON(filepath.Join(w.dir, "sandbox.json"), st); err != nil {
		return err
	}
	if rc := resolvConf(pod, cfg.ClusterDNS, cfg.ClusterDomain); rc != "" {
		if err := os.WriteFile(filepath.Join(w.dir, "resolv.conf"), []byte(rc), 0o644); err != nil {
			return err
		}
	}
	if !pod.Spec.HostNetwork {
		if err := os.WriteFile(filepath.Join(w.dir, "hosts"), []byte(etcHosts(pod, st.IPs)), 0o644); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.sandbox = &st
	w.mu.Unlock()
	w.statusChanged()
	return nil
}

func (w *podWorker) podNetwork(netns string) podNetwork {
	pod := w.currentPod()
	return podNetwork{
		ContainerID: sandboxID(string(pod.UID)), NetNS: netns,
		Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID),
	}
}

// teardownNetwork runs CNI DEL and removes the netns. Idempotent.
func (w *podWorker) teardownNetwork(ctx context.Context, st sandboxState) {
	if st.NetNS == "" {
		return
	}
	pn := podNetwork{ContainerID: sandboxID(st.UID), NetNS: st.NetNS, Namespace: st.Namespace, Name: st.Name, UID: st.UID}
	if err := w.k.net.Del(ctx, pn, st.CNIConf); err != nil {
		w.log.Warn("cni del", "err", err)
	}
	if err := removeNetns(filepath.Join(w.k.netnsView, filepath.Base(st.NetNS))); err != nil {
		w.log.Warn("remove netns view", "err", err)
	}
	if err := removeNetns(st.NetNS); err != nil {
		w.log.Warn("remove netns", "err", err)
	}
}
