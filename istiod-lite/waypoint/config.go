package waypoint

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
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
	// Empty takes ImageFor(own image) when the caller knows it, else
	// DefaultImage().
	Image string
	// XDSAddress and CAAddress are what waypoints dial (host:port), e.g.
	// "istiod.weft-system.svc:15012".
	XDSAddress string
	CAAddress  string
	// ClusterID and TrustDomain are passed to waypoints.
	ClusterID   string
	TrustDomain string
	// Log receives the controller's messages; nil discards.
	Log *slog.Logger
	// Now is the clock for condition times (default time.Now).
	Now func() time.Time
	// Workers reconcile Gateways in parallel (default 2).
	Workers int
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Image == "" {
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

// DefaultImage is weft/waypoint tagged with this binary's module version
// ("dev" for a development build).
func DefaultImage() string {
	tag := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		tag = bi.Main.Version
	}
	return "weft/" + ImageRepository + ":" + tag
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
