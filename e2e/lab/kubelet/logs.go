package kubelet

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// logPathFor returns the log file of the container's current instance or,
// with previous, of the one before it.
func (c *ctr) logPathFor(previous bool) (string, error) {
	st := c.snapshot()
	n := st.RestartCount
	if previous {
		if n == 0 {
			return "", fmt.Errorf("previous terminated container %q not found", c.spec.Name)
		}
		n--
	}
	return filepath.Join(c.w.dir, "logs", c.spec.Name, strconv.Itoa(int(n))+".log"), nil
}

// tailLines returns the last n lines of b (all of b when n < 0).
func tailLines(b []byte, n int) []byte {
	if n < 0 {
		return b
	}
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	i := end
	for lines := 0; i > 0; i-- {
		if b[i-1] == '\n' {
			lines++
			if lines == n {
				break
			}
		}
	}
	return b[i:]
}

// serveLogs streams a container's log file: tailLines, limitBytes,
// previous, and follow (until the instance exits or the client leaves).
func (s *apiServer) serveLogs(w http.ResponseWriter, r *http.Request) {
	_, c, err := s.findContainer(r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	previous := q.Get("previous") == "true"
	follow := q.Get("follow") == "true" && !previous
	tail := -1
	if v := q.Get("tailLines"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil {
			http.Error(w, "bad tailLines", http.StatusBadRequest)
			return
		}
	}
	limit := int64(-1)
	if v := q.Get("limitBytes"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil {
			http.Error(w, "bad limitBytes", http.StatusBadRequest)
			return
		}
	}
	path, err := c.logPathFor(previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, fmt.Sprintf("container %q has no logs yet", c.spec.Name), http.StatusBadRequest)
		return
	}
	defer func() { _ = f.Close() }() // read-only
	b, _ := io.ReadAll(f)
	b = tailLines(b, tail)
	var out io.Writer = w
	if limit >= 0 {
		lw := &limitedWriter{w: w, n: limit}
		out = lw
	}
	w.Header().Set("Content-Type", "text/plain")
	if _, err := out.Write(b); err != nil || !follow {
		return
	}
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		if fl != nil {
			fl.Flush()
		}
		n, _ := f.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return
			}
			continue
		}
		if cur, _ := c.logPathFor(false); cur != path || c.pid() == 0 {
			// The instance ended: drain what is left and stop.
			rest, _ := io.ReadAll(f)
			_, _ = out.Write(bytes.Clone(rest)) // last write; the client may be gone
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && l.n <= 0 {
		err = io.EOF
	}
	return n, err
}
