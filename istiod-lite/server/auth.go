package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/istiod-lite/xds"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// xdsAuth admits an xDS stream with a client certificate verified against
// the mesh root (the TLS config does the verification), or with a bearer
// service-account token for the CA audience, checked by TokenReview and
// cached briefly. Connections without TLS come only from the plaintext
// listener and are admitted when it is enabled.
type xdsAuth struct {
	kube      kubernetes.Interface
	audience  string
	ttl       time.Duration
	plaintext bool

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	who     string
	expires time.Time
}

var _ xds.Authenticator = (*xdsAuth)(nil)

func newXDSAuth(kube kubernetes.Interface, audience string, plaintext bool) *xdsAuth {
	return &xdsAuth{kube: kube, audience: audience, ttl: 30 * time.Second, plaintext: plaintext, cache: map[string]cached{}}
}

func (a *xdsAuth) Authenticate(ctx context.Context) (string, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if _, isTLS := p.AuthInfo.(credentials.TLSInfo); !isTLS {
			if a.plaintext {
				return "plaintext:" + p.Addr.String(), nil
			}
			return "", errors.New("plaintext xds is disabled")
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			leaf := ti.State.VerifiedChains[0][0]
			if len(leaf.URIs) == 1 {
				return leaf.URIs[0].String(), nil
			}
			return "", errors.New("client certificate without exactly one URI SAN")
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = t
			break
		}
	}
	if token == "" {
		return "", errors.New("no client certificate and no bearer token")
	}
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.cache[token]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.who, nil
	}
	a.mu.Unlock()
	tr, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{a.audience}}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return "", fmt.Errorf("token not authenticated: %s", tr.Status.Error)
	}
	who := tr.Status.User.Username
	if !strings.HasPrefix(who, "system:serviceaccount:") {
		return "", fmt.Errorf("token of %q is not a service account's", who)
	}
	a.mu.Lock()
	for k, c := range a.cache { // keep the cache bounded by live entries
		if now.After(c.expires) {
			delete(a.cache, k)
		}
	}
	a.cache[token] = cached{who: who, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return who, nil
}
