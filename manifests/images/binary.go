package images

import (
	"debug/elf"
	"errors"
	"fmt"
)

// ErrNotStatic is returned for a binary that needs a dynamic loader: the
// images have no libc, so it could not start.
var ErrNotStatic = errors.New("binary is dynamically linked; build it with CGO_ENABLED=0")

// inspectBinary checks that path is a static Linux ELF executable and
// returns its GOARCH-style architecture.
func inspectBinary(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: not a Linux executable: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("%s: ELF type %s is not an executable", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s: %w", path, ErrNotStatic)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return "", fmt.Errorf("%s: needs %v: %w", path, libs, ErrNotStatic)
	}
	arch, err := elfArch(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return arch, nil
}
