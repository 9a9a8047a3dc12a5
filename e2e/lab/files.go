package lab

import (
	"bytes"
	"os"
	"path/filepath"
)

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// BinDirs are the directories ExecIn searches first: the lab's own
// binaries, then the project's, then the pinned third-party ones.
func BinDirs(root string) []string {
	return []string{filepath.Join(root, "_output", "lab", "bin"), filepath.Join(root, "_output", "bin"), K8sDir(root)}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return lastLines(string(bytes.TrimSpace(b)), n)
}
