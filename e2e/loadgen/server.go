package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ServerConfig names the listeners of Serve; an empty address disables one.
type ServerConfig struct {
	// HTTP answers every request with a 1 KiB body after reading its body
	// (/small answers 2 bytes, /healthz is for probes).
	HTTP string
	// Source writes bytes to every connection until it closes.
	Source string
	// Hold accepts connections and reads them until they close.
	Hold string
}

// Serve runs the listeners of c until ctx ends.
func Serve(ctx context.Context, c ServerConfig, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	run := func(name, addr string, f func(context.Context, net.Listener) error) error {
		if addr == "" {
			return nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
		log.Info("listening", "listener", name, "addr", l.Addr().String())
		wg.Add(1)
		go func() { // owned by Serve: ends when ctx ends and l is closed
			defer wg.Done()
			if err := f(ctx, l); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return nil
	}
	err := errors.Join(
		run("http", c.HTTP, serveHTTP),
		run("source", c.Source, func(ctx context.Context, l net.Listener) error { return acceptLoop(ctx, l, source) }),
		run("hold", c.Hold, func(ctx context.Context, l net.Listener) error { return acceptLoop(ctx, l, sink) }),
	)
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	cancel()
	wg.Wait()
	return err
}

// acceptLoop hands every accepted connection to handle in its own
// goroutine and closes them all when ctx ends.
func acceptLoop(ctx context.Context, l net.Listener, handle func(net.Conn)) error {
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		_ = l.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = c.Close()
			continue
		}
		open[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() { // owned by acceptLoop: ends when c closes
			defer wg.Done()
			handle(c)
			_ = c.Close()
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		}()
	}
}

var kib = make([]byte, BodySize)

func serveHTTP(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(BodySize))
		_, _ = w.Write(kib)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
