package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config says where things are on the node.
type Config struct {
	// PluginBinary is the weft-cni binary to copy.
	PluginBinary string
	// BinDir is the node's CNI bin dir (/opt/cni/bin).
	BinDir string
	// ConfDir is the node's CNI conf dir (/etc/cni/net.d).
	ConfDir string
	// ConfFile, if set, is the primary config's file name in ConfDir;
	// otherwise the runtime's choice is used.
	ConfFile string
	// Settings go into weft-cni's conflist entry.
	Settings Settings
	// PollInterval is how often Run checks the conf dir (default 1 s).
	PollInterval time.Duration
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.PluginBinary == "" {
		errs = append(errs, errors.New("plugin binary path is required"))
	}
	if c.BinDir == "" || c.ConfDir == "" {
		errs = append(errs, errors.New("cni bin dir and conf dir are required"))
	}
	if c.ConfFile != "" && filepath.Base(c.ConfFile) != c.ConfFile {
		errs = append(errs, fmt.Errorf("conf file %q must be a file name inside the conf dir", c.ConfFile))
	}
	return errors.Join(errs...)
}

// Installer installs and removes weft-cni on one node. Its methods must not
// be called concurrently.
type Installer struct {
	cfg Config
	log *slog.Logger
}

// New returns an Installer.
func New(cfg Config, log *slog.Logger) (*Installer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return &Installer{cfg: cfg, log: log}, nil
}

// ErrNoPrimary means the conf dir holds no CNI config yet: the primary CNI
// has not been installed on this node.
var ErrNoPrimary = errors.New("no primary CNI config in the conf dir yet")

// Install copies the binary and inserts weft-cni into the primary config.
// It is idempotent and writes nothing that is already right. It returns
// the config file it updated.
func (i *Installer) Install() (string, error) {
	if err := i.installBinary(); err != nil {
		return "", err
	}
	return i.insert()
}

func (i *Installer) binPath() string { return filepath.Join(i.cfg.BinDir, PluginType) }

func (i *Installer) installBinary() error {
	src, err := os.ReadFile(i.cfg.PluginBinary)
	if err != nil {
		return fmt.Errorf("read plugin binary: %w", err)
	}
	if cur, err := os.ReadFile(i.binPath()); err == nil && bytes.Equal(cur, src) {
		return nil
	}
	if err := os.MkdirAll(i.cfg.BinDir, 0o755); err != nil {
		return fmt.Errorf("create cni bin dir: %w", err)
	}
	if err := writeAtomic(i.binPath(), src, 0o755); err != nil {
		return fmt.Errorf("install plugin binary: %w", err)
	}
	i.log.Info("installed plugin binary", "path", i.binPath())
	return nil
}

func (i *Installer) primary() (string, error) {
	if i.cfg.ConfFile != "" {
		p := filepath.Join(i.cfg.ConfDir, i.cfg.ConfFile)
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", ErrNoPrimary
			}
			return "", fmt.Errorf("stat cni config: %w", err)
		}
		return p, nil
	}
	p, err := primaryFile(i.cfg.ConfDir)
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", ErrNoPrimary
	}
	return p, nil
}

func (i *Installer) insert() (string, error) {
	path, err := i.primary()
	if err != nil {
		return "", err
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read cni config: %w", err)
	}
	c, err := parseConf(orig)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	entry, err := i.cfg.Settings.entry()
	if err != nil {
		return "", err
	}
	wasSingle := c.single
	c.toList()
	c.plugins = withPlugin(c.plugins, entry)
	out, err := c.encode()
	if err != nil {
		return "", err
	}
	target := path
	if wasSingle {
		target = strings.TrimSuffix(path, filepath.Ext(path)) + ".conflist"
	} else if sameJSON(orig, out) {
		return path, nil
	}
	if err := writeAtomic(target, out, 0o644); err != nil {
		return "", fmt.Errorf("write cni config: %w", err)
	}
	if target != path {
		if err := os.Remove(path); err != nil {
			return "", fmt.Errorf("remove converted cni config: %w", err)
		}
	}
	i.log.Info("inserted weft-cni into cni config", "path", target)
	return target, nil
}

// Uninstall removes weft-cni from every config in the conf dir and deletes
// the binary. It is idempotent.
func (i *Installer) Uninstall() error {
	var errs []error
	ents, err := os.ReadDir(i.cfg.ConfDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("read cni conf dir: %w", err))
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(i.cfg.ConfDir, e.Name())
		orig, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		c, err := parseConf(orig)
		if err != nil || c.single {
			continue
		}
		kept := withoutPlugin(c.plugins)
		if len(kept) == len(c.plugins) {
			continue
		}
		c.plugins = kept
		out, err := c.encode()
		if err == nil {
			err = writeAtomic(path, out, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove weft-cni from %s: %w", path, err))
			continue
		}
		i.log.Info("removed weft-cni from cni config", "path", path)
	}
	if err := os.Remove(i.binPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove plugin binary: %w", err))
	}
	return errors.Join(errs...)
}

// Run installs, then keeps the installation in place until ctx is done,
// re-inserting weft-cni whenever the primary config is rewritten and
// waiting for a primary config that does not exist yet. ready is called
// (if non-nil) with true once installed and false when the installation
// is found missing or broken. Run does not uninstall.
func (i *Installer) Run(ctx context.Context, ready func(bool)) error {
	if ready == nil {
		ready = func(bool) {}
	}
	t := time.NewTicker(i.cfg.PollInterval)
	defer t.Stop()
	last := ""
	for {
		path, err := i.Install()
		switch {
		case errors.Is(err, ErrNoPrimary):
			ready(false)
			if last != "waiting" {
				i.log.Info("waiting for the primary CNI to write its config", "dir", i.cfg.ConfDir)
				last = "waiting"
			}
		case err != nil:
			ready(false)
			if last != err.Error() {
				i.log.Error("install weft-cni", "err", err)
				last = err.Error()
			}
		default:
			ready(true)
			if last != path {
				i.log.Info("weft-cni installed", "config", path)
				last = path
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
