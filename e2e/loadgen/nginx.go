package loadgen

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// NginxBin is where Debian's nginx packages install the binary.
const NginxBin = "/usr/sbin/nginx"

// NginxConfig is a minimal nginx configuration making one plain HTTP/1.1
// reverse-proxy hop: listen on port, forward every request to upstream
// (host:port) over pooled keep-alive connections, one worker, no access
// log, every path under prefix.
func NginxConfig(prefix string, port int, upstream string) string {
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server %[3]s;
    keepalive 64;
  }
  server {
    listen %[2]d reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`, prefix, port, upstream)
}

// RunNginx writes NginxConfig under dir and runs bin (default NginxBin)
// in the foreground until ctx ends, then stops it with SIGQUIT.
func RunNginx(ctx context.Context, bin, dir string, port int, upstream string) error {
	if bin == "" {
		bin = NginxBin
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("nginx not installed (apt-get install -y nginx-light): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nginx prefix: %w", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(NginxConfig(dir, port, upstream)), 0o644); err != nil {
		return fmt.Errorf("write nginx config: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", conf, "-e", "stderr")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("nginx: %w", err)
	}
	return nil
}
