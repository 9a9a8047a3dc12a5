package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cni/agentapi"
)

// serveCNI serves the plugin API on the CNI socket until ctx is done.
func (a *Agent) serveCNI(ctx context.Context) error {
	path := a.cfg.CNISocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create cni socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale cni socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on cni socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return fmt.Errorf("chmod cni socket: %w", err)
	}
	srv := &http.Server{Handler: a.cniHandler(), ReadHeaderTimeout: 5 * time.Second}
	a.log.Info("cni api listening", "path", path)
	return serveUntil(ctx, srv, l)
}

func serveUntil(ctx context.Context, srv *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	case err := <-errc:
		return err
	}
}

func (a *Agent) cniHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathAdd, a.handleAdd)
	mux.HandleFunc("POST "+agentapi.PathDel, a.handleDel)
	mux.HandleFunc("POST "+agentapi.PathCheck, a.handleCheck)
	mux.HandleFunc("GET "+agentapi.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, agentapi.ErrorResponse{Error: err.Error()})
}

func decodeReq(w http.ResponseWriter, r *http.Request) (agentapi.PodRequest, bool) {
	var req agentapi.PodRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
		return req, false
	}
	if err := req.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return req, false
	}
	return req, true
}

// getPod finds the pod, from the informer or (for a pod the informer has
// not seen yet) from the API server.
func (a *Agent) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	if a.podLister != nil {
		if p, err := a.podLister.Pods(namespace).Get(name); err == nil {
			return p, nil
		}
	}
	var lastErr error
	for range 10 {
		p, err := a.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return p, nil
		}
		lastErr = err
		if !apierrors.IsNotFound(err) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, lastErr
}

func (a *Agent) getNamespace(ctx context.Context, name string) *corev1.Namespace {
	if a.nsLister != nil {
		if ns, err := a.nsLister.Get(name); err == nil {
			return ns
		}
	}
	ns, err := a.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return ns
}

// handleAdd enrolls the pod of a CNI ADD and answers once ztunnel acked.
func (a *Agent) handleAdd(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, ok := decodeReq(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.AddTimeout)
	defer cancel()
	log := a.log.With("pod", req.PodNamespace+"/"+req.PodName, "container_id", req.ContainerID)
	pod, err := a.getPod(ctx, req.PodNamespace, req.PodName)
	if err != nil {
		log.Error("cni add: pod lookup failed", "err", err)
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("look up pod %s/%s: %w", req.PodNamespace, req.PodName, err))
		return
	}
	if req.PodUID != "" && string(pod.UID) != req.PodUID {
		writeErr(w, http.StatusConflict, fmt.Errorf("pod %s/%s has uid %s, not %s", req.PodNamespace, req.PodName, pod.UID, req.PodUID))
		return
	}
	// Remember the sandbox's namespace even for a pod outside the mesh:
	// if its namespace is enrolled later, this is where its traffic is.
	a.paths.set(pod.Namespace, pod.Name, string(pod.UID), req.ContainerID, req.Netns)
	if !shouldEnroll(pod, a.getNamespace(ctx, req.PodNamespace)) {
		writeJSON(w, http.StatusOK, agentapi.AddResponse{Enrolled: false, Message: "pod is not in the mesh"})
		return
	}
	if err := a.enroll(ctx, pod, req.Netns, req.IPs, "cni", true); err != nil {
		log.Error("cni add: enrollment failed", "err", err)
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	a.metrics.addToAck.Observe(time.Since(start).Seconds())
	log.Info("cni add: pod enrolled", "took", time.Since(start).String())
	writeJSON(w, http.StatusOK, agentapi.AddResponse{Enrolled: true, Message: "capture installed and acknowledged by ztunnel"})
}

// handleDel forgets the pod whose sandbox is going away.
func (a *Agent) handleDel(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeReq(w, r)
	if !ok {
		return
	}
	if st := a.stateByName(req.PodNamespace, req.PodName); st != nil {
		a.unenroll(r.Context(), st.uid, "cni")
	}
	a.paths.forget(req.PodNamespace, req.PodName, req.ContainerID)
	writeJSON(w, http.StatusOK, struct{}{})
}

// handleCheck confirms an enrolled pod is held and acknowledged.
func (a *Agent) handleCheck(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeReq(w, r)
	if !ok {
		return
	}
	st := a.stateByName(req.PodNamespace, req.PodName)
	if st != nil && a.isAcked(st) {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	pod, err := a.getPod(r.Context(), req.PodNamespace, req.PodName)
	if err != nil || !shouldEnroll(pod, a.getNamespace(r.Context(), req.PodNamespace)) {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if st == nil {
		writeErr(w, http.StatusServiceUnavailable, errors.New("pod should be in the mesh but the agent does not hold it"))
		return
	}
	writeErr(w, http.StatusServiceUnavailable, errors.New("pod's capture is installed but ztunnel has not acknowledged it"))
}
