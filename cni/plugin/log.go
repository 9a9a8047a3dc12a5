package plugin

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logLevel %q: want debug, info, warn or error", s)
}

// openFileLog returns a JSON logger appending to the config's log file, or
// a discarding one when the file cannot be opened: logging must never
// reach stdout or fail the CNI call.
func openFileLog(conf *Config) (*slog.Logger, func()) {
	if conf.LogFile == "-" {
		return slog.New(slog.DiscardHandler), func() {}
	}
	level, _ := parseLevel(conf.LogLevel)
	_ = os.MkdirAll(filepath.Dir(conf.LogFile), 0o755)
	f, err := os.OpenFile(conf.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return slog.New(slog.DiscardHandler), func() {}
	}
	h := slog.NewJSONHandler(f, &slog.HandlerOptions{Level: level})
	return slog.New(h).With("component", "weft-cni", "pid", os.Getpid()), func() { _ = f.Close() }
}
