package ca

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Extra keys the API server puts into a TokenReview of a pod-bound token.
const (
	extraPodName  = "authentication.kubernetes.io/pod-name"
	extraPodUID   = "authentication.kubernetes.io/pod-uid"
	extraNodeName = "authentication.kubernetes.io/node-name"
)

// maxCachedTokens bounds the token cache; beyond it the cache is cleared.
const maxCachedTokens = 8192

// caller is an authenticated requester.
type caller struct {
	Namespace      string
	ServiceAccount string
	PodName        string // empty unless the token is bound to a pod
	PodUID         string
	NodeName       string // empty unless the API server reports the pod's node
}

func (c caller) String() string { return c.Namespace + "/" + c.ServiceAccount }

// errUnauthenticated marks a token the API server rejected (as opposed to a
// failure to ask it).
var errUnauthenticated = errors.New("unauthenticated")

// tokenAuthenticator checks bearer tokens with the TokenReview API and
// caches answers briefly (rejections more briefly); failures to reach the
// API server are not cached. It is safe for concurrent use.
type tokenAuthenticator struct {
	kube     kubernetes.Interface
	audience string
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedCaller
}

type cachedCaller struct {
	caller  caller
	err     error // a rejection (wrapping errUnauthenticated), cached more briefly
	expires time.Time
}

// maxNegativeTTL bounds how long a rejected token's answer is reused, so a
// flood of bad tokens does not become a flood of TokenReviews while a token
// that becomes valid (clock skew at issue) is soon accepted.
const maxNegativeTTL = 5 * time.Second

func newTokenAuthenticator(kube kubernetes.Interface, audience string, ttl time.Duration, now func() time.Time) *tokenAuthenticator {
	return &tokenAuthenticator{kube: kube, audience: audience, ttl: ttl, now: now, cache: map[[sha256.Size]byte]cachedCaller{}}
}

// authenticate returns the service account a token belongs to. Errors
// wrapping errUnauthenticated mean the token is not acceptable; others mean
// the API server could not be asked.
func (a *tokenAuthenticator) authenticate(ctx context.Context, token string) (caller, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.caller, c.err
	}
	a.mu.Unlock()

	review, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{a.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return caller{}, fmt.Errorf("token review: %w", err)
	}
	c, err := a.callerFromReview(review.Status)
	ttl := a.ttl
	if err != nil {
		ttl = min(ttl, maxNegativeTTL)
	}
	a.mu.Lock()
	if len(a.cache) >= maxCachedTokens {
		for k, v := range a.cache {
			if !now.Before(v.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCachedTokens {
			clear(a.cache)
		}
	}
	a.cache[key] = cachedCaller{caller: c, err: err, expires: now.Add(ttl)}
	a.mu.Unlock()
	return c, err
}

func (a *tokenAuthenticator) callerFromReview(st authnv1.TokenReviewStatus) (caller, error) {
	if !st.Authenticated {
		msg := st.Error
		if msg == "" {
			msg = "token not authenticated"
		}
		return caller{}, fmt.Errorf("%w: %s", errUnauthenticated, msg)
	}
	if !slices.Contains(st.Audiences, a.audience) {
		return caller{}, fmt.Errorf("%w: token is not for audience %q (token audiences %v)", errUnauthenticated, a.audience, st.Audiences)
	}
	parts := strings.Split(st.User.Username, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return caller{}, fmt.Errorf("%w: %q is not a service account", errUnauthenticated, st.User.Username)
	}
	first := func(k string) string {
		if v := st.User.Extra[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return caller{
		Namespace:      parts[2],
		ServiceAccount: parts[3],
		PodName:        first(extraPodName),
		PodUID:         first(extraPodUID),
		NodeName:       first(extraNodeName),
	}, nil
}
