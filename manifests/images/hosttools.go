package images

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// multiarchToken in a HostTools path stands for the Debian multiarch
// triplet of the image's architecture (x86_64-linux-gnu on amd64).
const multiarchToken = "{multiarch}"

var multiarch = map[string]string{
	"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "riscv64": "riscv64-linux-gnu",
	"ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
}

// hostTools collects host files for an image: each path (a program, a
// symlink to one, or a folder of plug-ins) with every shared library and
// the dynamic loader the ELF files among them need, so that the programs
// run in an image that has no distribution of its own.
type hostTools struct {
	root    string // prefix of every host path read ("" for "/")
	arch    string
	libDirs []string
	entries []entry
	seen    map[string]bool
}

func newHostTools(root, arch string) (*hostTools, error) {
	triplet, ok := multiarch[arch]
	if !ok {
		return nil, fmt.Errorf("no multiarch triplet for %s", arch)
	}
	return &hostTools{
		root: root, arch: arch, seen: map[string]bool{},
		libDirs: []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
	}, nil
}

// expand substitutes the multiarch token.
func (h *hostTools) expand(p string) string {
	return strings.ReplaceAll(p, multiarchToken, multiarch[h.arch])
}

func (h *hostTools) host(p string) string { return filepath.Join(h.root, filepath.FromSlash(p)) }

// add includes p: a symlink is kept as a symlink and its target added, a
// folder is added recursively, an ELF file pulls in its libraries.
func (h *hostTools) add(p string) error {
	p = path.Clean(h.expand(p))
	if h.seen[p] {
		return nil
	}
	h.seen[p] = true
	st, err := os.Lstat(h.host(p))
	if err != nil {
		return fmt.Errorf("host tool %s: %w", p, err)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(h.host(p))
		if err != nil {
			return fmt.Errorf("host tool %s: %w", p, err)
		}
		h.entries = append(h.entries, entry{name: p, mode: 0o777, link: target})
		abs := target
		if !path.IsAbs(abs) {
			abs = path.Join(path.Dir(p), target)
		}
		return h.add(abs)
	case st.IsDir():
		ents, err := os.ReadDir(h.host(p))
		if err != nil {
			return fmt.Errorf("host tool %s: %w", p, err)
		}
		h.entries = append(h.entries, entry{name: p, mode: 0o755, dir: true})
		for _, e := range ents {
			if err := h.add(path.Join(p, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	data, err := os.ReadFile(h.host(p))
	if err != nil {
		return fmt.Errorf("host tool %s: %w", p, err)
	}
	h.entries = append(h.entries, entry{name: p, mode: int64(st.Mode().Perm()), data: data})
	return h.addNeeds(p)
}

// addNeeds adds the loader and the libraries the ELF file p needs; a file
// that is not ELF needs nothing.
func (h *hostTools) addNeeds(p string) error {
	f, err := elf.Open(h.host(p))
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	if arch, err := elfArch(f); err != nil || arch != h.arch {
		return fmt.Errorf("host tool %s is not a %s binary: the image's binaries and the build machine's tools must share an architecture", p, h.arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return fmt.Errorf("host tool %s: read interpreter: %w", p, err)
			}
			if err := h.addFile(strings.TrimRight(string(b), "\x00")); err != nil {
				return err
			}
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("host tool %s: %w", p, err)
	}
	for _, lib := range libs {
		found := ""
		for _, d := range h.libDirs {
			if _, err := os.Stat(h.host(path.Join(d, lib))); err == nil {
				found = path.Join(d, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("host tool %s needs %s, found in none of %v", p, lib, h.libDirs)
		}
		if err := h.addFile(found); err != nil {
			return err
		}
	}
	return nil
}

// addFile adds p's content (following symlinks) as a regular file at p.
func (h *hostTools) addFile(p string) error {
	p = path.Clean(p)
	if h.seen[p] {
		return nil
	}
	h.seen[p] = true
	data, err := os.ReadFile(h.host(p))
	if err != nil {
		return fmt.Errorf("host library %s: %w", p, err)
	}
	h.entries = append(h.entries, entry{name: p, mode: 0o755, data: data})
	return h.addNeeds(p)
}

// layerEntries returns the collected entries with every parent folder,
// sorted by path so that folders precede their contents.
func (h *hostTools) layerEntries() []entry {
	byName := map[string]entry{}
	for _, e := range h.entries {
		byName[e.name] = e
		for d := path.Dir(e.name); d != "/"; d = path.Dir(d) {
			if _, ok := byName[d]; !ok {
				byName[d] = entry{name: d, mode: 0o755, dir: true}
			}
		}
	}
	out := make([]entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return out
}

// elfArch maps an ELF machine to a GOARCH.
func elfArch(f *elf.File) (string, error) {
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("unsupported machine %s", f.Machine)
}
