package bugreport

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"time"
)

// Archive is the report's files by path inside the tarball.
type Archive struct {
	files map[string][]byte
	// Errors records what could not be collected, written as errors.txt.
	errors []string
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{files: map[string][]byte{}} }

// Add stores a redacted copy of data at path.
func (a *Archive) Add(path string, data []byte) { a.files[path] = Redact(append([]byte(nil), data...)) }

// Fail records that path could not be collected and why.
func (a *Archive) Fail(path string, err error) {
	a.errors = append(a.errors, fmt.Sprintf("%s: %v", path, err))
}

// Paths lists the stored paths, sorted.
func (a *Archive) Paths() []string {
	out := make([]string, 0, len(a.files))
	for p := range a.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Write writes the archive as a gzipped tarball under dir/ with mtime.
func (a *Archive) Write(w io.Writer, dir string, mtime time.Time) error {
	if len(a.errors) > 0 {
		var b []byte
		for _, e := range a.errors {
			b = append(b, e+"\n"...)
		}
		a.Add("errors.txt", b)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, p := range a.Paths() {
		data := a.files[p]
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + p, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
