// Command weft-build produces what Weft ships besides its binaries. Run it
// from the repository root:
//
//	weft-build crds   [--out manifests/base/crds/generated]
//	weft-build images [--bin-dir _output/bin] [--out _output/images] [--repo weft] [--tag VERSION]
//	                  [--only a,b] [--skip-missing]
//
// crds assembles the CustomResourceDefinitions from the modules go.mod pins
// (package manifests/crds); images writes one OCI image tarball per
// component from the static binaries (package manifests/images).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/weftmesh/weft/manifests/crds"
	"github.com/weftmesh/weft/manifests/images"
	"github.com/weftmesh/weft/pkg/version"
)

const usage = "usage: weft-build crds [flags] | images [flags] (run from the repository root; -h for flags)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "weft-build:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "crds":
		return runCRDs(ctx, args[1:], out)
	case "images":
		return runImages(args[1:], out)
	case "version":
		_, err := fmt.Fprintln(out, version.String())
		return err
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}

func runCRDs(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("weft-build crds", flag.ContinueOnError)
	dir := fs.String("out", "manifests/base/crds/generated", "folder the kustomization reads the CRDs from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := crds.Assemble(ctx, crds.Config{OutDir: *dir})
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, err := fmt.Fprintf(out, "%s: %d CRDs from %s %s\n", f.Path, len(f.CRDs), f.Module, f.Version); err != nil {
			return err
		}
	}
	return nil
}

func runImages(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("weft-build images", flag.ContinueOnError)
	cfg := images.Config{}
	fs.StringVar(&cfg.BinDir, "bin-dir", "_output/bin", "folder of the statically linked binaries (make build)")
	fs.StringVar(&cfg.OutDir, "out", "_output/images", "folder for the image tarballs")
	fs.StringVar(&cfg.Repository, "repo", images.DefaultRepository, "image repository prefix")
	fs.StringVar(&cfg.Tag, "tag", version.Version, "image tag")
	fs.StringVar(&cfg.Revision, "revision", version.Commit, "source commit for the revision label")
	only := fs.String("only", "", "comma-separated image names to build (default: all)")
	skipMissing := fs.Bool("skip-missing", false, "skip images whose binaries are not built instead of failing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	specs, err := selectSpecs(*only)
	if err != nil {
		return err
	}
	if missing := images.Missing(cfg.BinDir, specs); len(missing) > 0 {
		if !*skipMissing {
			return fmt.Errorf("binaries not built in %s: %s (run make build, or pass --skip-missing)",
				cfg.BinDir, strings.Join(missing, ", "))
		}
		specs = withoutMissing(cfg.BinDir, specs)
		if _, err := fmt.Fprintf(out, "skipping images without binaries: %s\n", strings.Join(missing, ", ")); err != nil {
			return err
		}
		if len(specs) == 0 {
			return nil // an empty Specs would mean every image
		}
	}
	cfg.Specs = specs
	res, err := images.Build(cfg)
	for _, r := range res {
		if _, werr := fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", r.Path, r.Ref, r.Arch, r.Digest); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

func selectSpecs(only string) ([]images.Spec, error) {
	all := images.DefaultSpecs()
	if only == "" {
		return all, nil
	}
	var out []images.Spec
	for _, n := range strings.Split(only, ",") {
		found := false
		for _, s := range all {
			if s.Name == strings.TrimSpace(n) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("--only: unknown image %q", n)
		}
	}
	return out, nil
}

func withoutMissing(binDir string, specs []images.Spec) []images.Spec {
	var out []images.Spec
	for _, s := range specs {
		if len(images.Missing(binDir, []images.Spec{s})) == 0 {
			out = append(out, s)
		}
	}
	return out
}
