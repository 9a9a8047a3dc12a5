package echo

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"sort"
)

// Pod is the identity of the serving pod, read from the environment the
// lab's deployments set through the downward API.
type Pod struct {
	Name           string `json:"name,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	IP             string `json:"ip,omitempty"`
	Node           string `json:"node,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	Hostname       string `json:"hostname,omitempty"`
	// Version is the workload's version label (for traffic-split tests).
	Version string `json:"version,omitempty"`
}

// Environment variables PodFromEnv reads.
const (
	EnvPodName        = "POD_NAME"
	EnvPodNamespace   = "POD_NAMESPACE"
	EnvPodIP          = "POD_IP"
	EnvNodeName       = "NODE_NAME"
	EnvServiceAccount = "SERVICE_ACCOUNT"
	EnvVersion        = "VERSION"
)

// PodFromEnv reads the pod identity from the process environment.
func PodFromEnv() Pod {
	h, _ := os.Hostname()
	return Pod{
		Name:           os.Getenv(EnvPodName),
		Namespace:      os.Getenv(EnvPodNamespace),
		IP:             os.Getenv(EnvPodIP),
		Node:           os.Getenv(EnvNodeName),
		ServiceAccount: os.Getenv(EnvServiceAccount),
		Hostname:       h,
		Version:        os.Getenv(EnvVersion),
	}
}

// Reply is the JSON body of every HTTP answer and, for TCP, the first line
// the server writes.
type Reply struct {
	Pod Pod `json:"pod"`
	// Protocol is "tcp", "HTTP/1.1" or "HTTP/2.0".
	Protocol string `json:"protocol"`
	Method   string `json:"method,omitempty"`
	Host     string `json:"host,omitempty"`
	Path     string `json:"path,omitempty"`
	Query    string `json:"query,omitempty"`
	// Headers are the request headers, each name canonical, values joined
	// in arrival order.
	Headers map[string][]string `json:"headers,omitempty"`
	// Source is the peer address the server saw ("ip:port").
	Source string `json:"source"`
	// Local is the address the connection arrived on.
	Local string `json:"local,omitempty"`
	// TLS describes the TLS session, if any.
	TLS *TLSInfo `json:"tls,omitempty"`
}

// TLSInfo describes a TLS session the server terminated.
type TLSInfo struct {
	Version    string   `json:"version"`
	ServerName string   `json:"serverName,omitempty"`
	ALPN       string   `json:"alpn,omitempty"`
	PeerCN     string   `json:"peerCommonName,omitempty"`
	PeerURIs   []string `json:"peerURIs,omitempty"`
	PeerDNS    []string `json:"peerDNSNames,omitempty"`
}

func replyFor(pod Pod, r *http.Request) Reply {
	rep := Reply{
		Pod:      pod,
		Protocol: r.Proto,
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.Path,
		Query:    r.URL.RawQuery,
		Headers:  map[string][]string{},
		Source:   r.RemoteAddr,
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		rep.Local = a.String()
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rep.Headers[k] = r.Header[k]
	}
	if r.TLS != nil {
		rep.TLS = tlsInfo(r.TLS)
	}
	return rep
}

func tlsInfo(cs *tls.ConnectionState) *TLSInfo {
	info := &TLSInfo{Version: tls.VersionName(cs.Version), ServerName: cs.ServerName, ALPN: cs.NegotiatedProtocol}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		info.PeerCN = leaf.Subject.CommonName
		info.PeerDNS = leaf.DNSNames
		for _, u := range leaf.URIs {
			info.PeerURIs = append(info.PeerURIs, u.String())
		}
	}
	return info
}
