package images

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultRepository is the image repository prefix the manifests use.
const DefaultRepository = "weft"

// DefaultSource is the org.opencontainers.image.source label.
const DefaultSource = "https://github.com/weftmesh/weft"

// Config says what to build and where.
type Config struct {
	// BinDir holds the built binaries (the Makefile's _output/bin).
	BinDir string
	// OutDir receives <name>.tar per image; created if missing.
	OutDir string
	// Repository prefixes image names; DefaultRepository when empty.
	Repository string
	// Tag is the image tag, normally the build's version.
	Tag string
	// Revision is the source commit, for the revision label.
	Revision string
	// Source is the source label; DefaultSource when empty.
	Source string
	// Created is the images' creation time; the zero time (the Unix
	// epoch in the config) keeps builds reproducible.
	Created time.Time
	// Specs default to DefaultSpecs().
	Specs []Spec
	// HostRoot prefixes the host paths HostTools are read from; "" is
	// the build machine's root.
	HostRoot string
}

func (c *Config) setDefaults() error {
	if c.Repository == "" {
		c.Repository = DefaultRepository
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Specs == nil {
		c.Specs = DefaultSpecs()
	}
	var errs []error
	if c.BinDir == "" {
		errs = append(errs, errors.New("a binary folder is required"))
	}
	if c.OutDir == "" {
		errs = append(errs, errors.New("an output folder is required"))
	}
	if c.Tag == "" {
		errs = append(errs, errors.New("a tag is required"))
	}
	return errors.Join(errs...)
}

// Result is one written image.
type Result struct {
	// Ref is the image reference, e.g. weft/ztunnel:v0.1.0.
	Ref string
	// Path is the written tarball.
	Path string
	// Digest is the image manifest's digest.
	Digest string
	// Arch is the binaries' architecture.
	Arch string
}

// Build writes one tarball per spec. It stops at the first failure; images
// written before it stay.
func Build(cfg Config) ([]Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output folder: %w", err)
	}
	var out []Result
	for _, s := range cfg.Specs {
		r, err := buildOne(cfg, s)
		if err != nil {
			return out, fmt.Errorf("image %s: %w", s.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Missing returns the specs' binaries that are not in binDir.
func Missing(binDir string, specs []Spec) []string {
	var missing []string
	for _, s := range specs {
		for _, b := range s.binaries() {
			if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
				missing = append(missing, b)
			}
		}
	}
	return missing
}

func buildOne(cfg Config, s Spec) (Result, error) {
	ref, err := name.NewTag(cfg.Repository+"/"+s.Name+":"+cfg.Tag, name.WeakValidation)
	if err != nil {
		return Result{}, fmt.Errorf("image name: %w", err)
	}
	img, arch, err := Image(cfg, s)
	if err != nil {
		return Result{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("digest: %w", err)
	}
	p := filepath.Join(cfg.OutDir, s.Name+".tar")
	tmp := p + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return Result{}, fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return Result{}, fmt.Errorf("write %s: %w", p, err)
	}
	return Result{Ref: ref.String(), Path: p, Digest: digest.String(), Arch: arch}, nil
}

// Image assembles the image of s from the binaries in cfg.BinDir and
// returns it with its architecture. cfg must have passed Build's defaults
// (Tag set).
func Image(cfg Config, s Spec) (v1.Image, string, error) {
	if s.Name == "" || strings.ContainsAny(s.Name, "/:") {
		return nil, "", fmt.Errorf("bad image name %q", s.Name)
	}
	if s.User == "" {
		s.User = NonRootUser
	}
	var arch string
	var bins []entry
	for _, b := range s.binaries() {
		p := filepath.Join(cfg.BinDir, b)
		a, err := inspectBinary(p)
		if err != nil {
			return nil, "", err
		}
		if arch != "" && a != arch {
			return nil, "", fmt.Errorf("%s is %s but %s is %s", b, a, s.Name, arch)
		}
		arch = a
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, "", err
		}
		bins = append(bins, entry{name: path.Join(BinDir, b), mode: 0o755, data: data})
	}
	base, err := tarLayer(baseEntries())
	if err != nil {
		return nil, "", err
	}
	app, err := tarLayer(bins)
	if err != nil {
		return nil, "", err
	}
	layers := []v1.Layer{base}
	if len(s.HostTools) > 0 {
		tools, err := toolsLayer(cfg.HostRoot, arch, s.HostTools)
		if err != nil {
			return nil, "", err
		}
		layers = append(layers, tools)
	}
	layers = append(layers, app)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, "", fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: cfg.Created.UTC()}
	cf.Author = "Weft authors"
	cf.Config = v1.Config{
		Entrypoint: []string{path.Join(BinDir, s.Name)},
		User:       s.User,
		WorkingDir: "/",
		Env:        []string{"PATH=" + BinDir + ":/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels:     labels(cfg, s),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	return img, arch, nil
}

// labels are the image's OCI annotations-as-labels.
func labels(cfg Config, s Spec) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":   s.Name,
		"org.opencontainers.image.version": cfg.Tag,
		"org.opencontainers.image.source":  cfg.Source,
		"org.opencontainers.image.vendor":  "Weft",
	}
	if s.Description != "" {
		l["org.opencontainers.image.description"] = s.Description
	}
	if cfg.Revision != "" {
		l["org.opencontainers.image.revision"] = cfg.Revision
	}
	if s.Privileges != "" {
		l["io.weftmesh.privileges"] = s.Privileges
	}
	if len(s.HostTools) > 0 {
		l["io.weftmesh.host-tools"] = strings.Join(s.HostTools, " ")
	}
	return l
}

// toolsLayer builds the layer of a spec's host tools.
func toolsLayer(root, arch string, tools []string) (v1.Layer, error) {
	h, err := newHostTools(root, arch)
	if err != nil {
		return nil, err
	}
	for _, t := range tools {
		if err := h.add(t); err != nil {
			return nil, fmt.Errorf("%w (install the package that provides it on the build machine)", err)
		}
	}
	return tarLayer(h.layerEntries())
}
