package nodeagent

import (
	"sync"

	"github.com/weftmesh/weft/pkg/netns"
)

// netnsPaths remembers the network namespace path CNI ADD named for each
// pod sandbox on the node, enrolled or not, so that enrolling a running
// pod later (its namespace labelled) opens the namespace the runtime made
// instead of searching for one. Safe for concurrent use.
type netnsPaths struct {
	mu    sync.Mutex
	byPod map[string]netnsPath // namespace/name
}

type netnsPath struct{ uid, containerID, path string }

func (p *netnsPaths) set(namespace, name, uid, containerID, path string) {
	if path == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byPod == nil {
		p.byPod = map[string]netnsPath{}
	}
	p.byPod[namespace+"/"+name] = netnsPath{uid: uid, containerID: containerID, path: path}
}

// forget drops the pod's path; with containerID set, only if it came from
// that sandbox (a DEL of an old sandbox after the new one's ADD keeps the
// new path).
func (p *netnsPaths) forget(namespace, name, containerID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := namespace + "/" + name
	if e, ok := p.byPod[key]; ok && (containerID == "" || e.containerID == containerID) {
		delete(p.byPod, key)
	}
}

// get returns the path remembered for the pod with uid, or "".
func (p *netnsPaths) get(namespace, name, uid string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byPod[namespace+"/"+name]
	if !ok || (e.uid != "" && e.uid != uid) {
		return ""
	}
	return e.path
}

// findNetns opens a running pod's namespace: the one CNI ADD named for it
// if that still holds the pod's IP on this node, else what the finder's
// scan finds (checked to be on this node).
func (a *Agent) findNetns(namespace, name, uid string, ips []string) (*netns.NetNS, error) {
	if path := a.paths.get(namespace, name, uid); path != "" {
		ns, err := a.open(path)
		if err == nil {
			if a.finder.Holds(ns, ips) {
				return ns, nil
			}
			_ = ns.Close()
		}
		a.log.Info("netns from cni add no longer holds the pod ip; scanning", "pod", namespace+"/"+name, "path", path)
	}
	return a.finder.Find(ips)
}
