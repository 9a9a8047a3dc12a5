package waypoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/weftmesh/weft/pkg/version"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// FieldManager is the server-side apply field manager of everything the
// controller writes.
const FieldManager = "istiod-lite"

// ImageRepository is the waypoint image's repository name; ImageFor puts
// it in place of istiod-lite's own.
const ImageRepository = "waypoint"

// Config configures the controller.
type Config struct {
	// Image is the waypoint container image, e.g. "weft/waypoint:v0.1.0".
	// Empty derives it with ImageFor from the image of istiod-lite's own
	// pod (PodNamespace/PodName) when Run starts, else DefaultImage().
	Image string
	// PodNamespace and PodName name istiod-lite's own pod, whose image
	// gives the waypoint image's registry and tag.
	PodNamespace, PodName string
	// XDSAddress and CAAddress are what waypoints dial (host:port), e.g.
	// "istiod.weft-system.svc:15012".
	XDSAddress string
	CAAddress  string
	// ClusterID, TrustDomain, DomainSuffix (default "cluster.local") and
	// Network (may be empty) are passed to waypoints.
	ClusterID, TrustDomain, DomainSuffix, Network string
	// Log receives the controller's messages; nil discards.
	Log *slog.Logger
	// Now is the clock for condition times (default time.Now).
	Now func() time.Time
	// Workers reconcile Gateways in parallel (default 2).
	Workers int
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Image == "" && (c.PodName == "" || c.PodNamespace == "") {
		c.Image = DefaultImage()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.DomainSuffix == "" {
		c.DomainSuffix = "cluster.local"
	}
	if c.CAAddress == "" {
		c.CAAddress = c.XDSAddress
	}
	var errs []error
	if c.XDSAddress == "" {
		errs = append(errs, errors.New("waypoint xDS address is required"))
	}
	if c.TrustDomain == "" {
		errs = append(errs, errors.New("trust domain is required"))
	}
	return errors.Join(errs...)
}

// DefaultImage is weft/waypoint tagged with this build's version (what
// `make images` tags every image with; "dev" for an unstamped build).
func DefaultImage() string {
	return "weft/" + ImageRepository + ":" + version.Version
}

// ImageFor derives the waypoint image from istiod-lite's own image: the
// same registry, path and tag with the last path element replaced, so
// "registry.example/weft/istiod-lite:v1" gives
// "registry.example/weft/waypoint:v1". A digest cannot carry over (it
// names istiod-lite's image), so an image pinned by digest only gives
// DefaultImage's tag.
func ImageFor(own string) (string, error) {
	if own == "" {
		return "", errors.New("empty image")
	}
	name, digest, _ := strings.Cut(own, "@")
	repo, tag := name, ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo, tag = name[:i], name[i+1:]
	}
	if repo == "" || strings.HasSuffix(repo, "/") {
		return "", fmt.Errorf("image %q has no repository", own)
	}
	if tag == "" {
		if digest == "" {
			tag = "latest"
		} else {
			_, tag, _ = strings.Cut(DefaultImage(), ":")
		}
	}
	prefix := ""
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		prefix = repo[:i+1]
	}
	return prefix + ImageRepository + ":" + tag, nil
}

// resolveImage fills c.Image from the image of the container of pod
// PodNamespace/PodName that runs istiod-lite (the first container whose
// image names istiod-lite, else the first), falling back to
// DefaultImage when the pod cannot be read.
func (c *Config) resolveImage(ctx context.Context, kc kubernetes.Interface) {
	if c.Image != "" {
		return
	}
	c.Image = DefaultImage()
	pod, err := kc.CoreV1().Pods(c.PodNamespace).Get(ctx, c.PodName, metav1.GetOptions{})
	if err != nil {
		c.Log.Warn("cannot read own pod for the waypoint image; using the default", "pod", c.PodNamespace+"/"+c.PodName, "image", c.Image, "err", err)
		return
	}
	own := ""
	for _, ctr := range pod.Spec.Containers {
		if own == "" || strings.Contains(ctr.Image, "istiod-lite") {
			own = ctr.Image
		}
		if strings.Contains(ctr.Image, "istiod-lite") {
			break
		}
	}
	img, err := ImageFor(own)
	if err != nil {
		c.Log.Warn("cannot derive the waypoint image from own image; using the default", "own", own, "image", c.Image, "err", err)
		return
	}
	c.Image = img
}
