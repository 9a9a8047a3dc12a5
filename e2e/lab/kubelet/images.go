package kubelet

import (
	"fmt"
	"strings"
)

// errImageUnknown is returned when an image has no local binary.
type errImageUnknown struct{ image string }

func (e errImageUnknown) Error() string {
	return fmt.Sprintf("image %q is not in the lab's image table (no local binary); add its repository to the kubelet config Images", e.image)
}

// imageRepository strips the tag and digest from an image reference:
// "weft/ztunnel:dev" -> "weft/ztunnel", "a/b@sha256:..." -> "a/b",
// "localhost:5000/x:1" -> "localhost:5000/x".
func imageRepository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		image = image[:i]
	}
	return image
}

// resolveImage maps an image reference to its local binary. It also accepts
// the "docker.io/" and "docker.io/library/" spellings of a repository.
func resolveImage(images map[string]string, image string) (string, error) {
	repo := imageRepository(image)
	candidates := []string{repo}
	if r, ok := strings.CutPrefix(repo, "docker.io/"); ok {
		candidates = append(candidates, r, strings.TrimPrefix(r, "library/"))
	}
	for _, c := range candidates {
		if bin, ok := images[c]; ok && bin != "" {
			return bin, nil
		}
	}
	return "", errImageUnknown{image: image}
}
