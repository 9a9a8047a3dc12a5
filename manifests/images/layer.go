package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerTime is every file's modification time: fixed so that layers are
// reproducible.
var layerTime = time.Unix(0, 0).UTC()

// entry is one file or folder of a layer.
type entry struct {
	name string // absolute path in the image
	mode int64
	dir  bool
	link string // symlink target, when set
	data []byte
}

// baseEntries is what a distroless "static" base gives a static binary:
// users root and nonroot (65532), a sticky world-writable /tmp, and the
// folder the binaries go into.
func baseEntries() []entry {
	return []entry{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "/home", mode: 0o755, dir: true},
		{name: "/home/nonroot", mode: 0o700, dir: true},
		{name: "/root", mode: 0o700, dir: true},
		{name: "/run", mode: 0o755, dir: true},
		{name: "/tmp", mode: 0o1777, dir: true},
		{name: "/usr", mode: 0o755, dir: true},
		{name: "/usr/local", mode: 0o755, dir: true},
		{name: BinDir, mode: 0o755, dir: true},
		{name: "/var", mode: 0o755, dir: true},
		{name: "/var/run", mode: 0o755, dir: true},
	}
}

// tarLayer writes entries, in order, into an uncompressed tar and wraps it
// as an OCI layer (gzip-compressed when written out).
func tarLayer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		name := path.Clean(e.name)
		if !path.IsAbs(name) || name == "/" {
			return nil, fmt.Errorf("layer entry %q must be an absolute path below /", e.name)
		}
		hdr := &tar.Header{
			Name:    name[1:],
			Mode:    e.mode, // tar keeps the sticky bit as c_ISVTX (0o1000)
			ModTime: layerTime,
			Format:  tar.FormatUSTAR,
		}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
