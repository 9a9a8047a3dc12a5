package log

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// Format is the output encoding of a logger.
type Format string

// The formats a binary accepts for --log-format.
const (
	FormatJSON Format = "json"
	FormatText Format = "text"
)

// ComponentKey is the attribute that names the component a record came from.
const ComponentKey = "component"

// Options configures New.
type Options struct {
	// Format is "json" (the default, for production) or "text" (terminal).
	Format Format
	// Level is the default level for every component: debug, info, warn or
	// error. Empty means info.
	Level string
	// Output receives the records; nil means io.Discard.
	Output io.Writer
}

// Root owns the handler every component logger writes through and the levels
// that filter them. It is safe for concurrent use.
type Root struct {
	handler slog.Handler
	mu      sync.RWMutex
	def     *slog.LevelVar
	comps   map[string]*slog.LevelVar
}

// New builds a Root from validated options.
func New(opts Options) (*Root, error) {
	def := new(slog.LevelVar)
	if opts.Level != "" {
		lvl, err := ParseLevel(opts.Level)
		if err != nil {
			return nil, err
		}
		def.Set(lvl)
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	// The handler passes everything; component levels filter first.
	hopts := &slog.HandlerOptions{Level: slog.Level(-100)}
	var h slog.Handler
	switch opts.Format {
	case FormatJSON, "":
		h = slog.NewJSONHandler(out, hopts)
	case FormatText:
		h = slog.NewTextHandler(out, hopts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", opts.Format)
	}
	return &Root{handler: h, def: def, comps: map[string]*slog.LevelVar{}}, nil
}

// Logger returns the logger of a component. Records carry component=name and
// pass when they reach the component's level (or the default level when the
// component has none of its own).
func (r *Root) Logger(component string) *slog.Logger {
	return slog.New(&levelHandler{root: r, comp: component, next: r.handler}).With(ComponentKey, component)
}

// SetLevel changes the level of one component, or of every component without
// a level of its own when component is empty. It is the hook behind the
// admin endpoints' /logging.
func (r *Root) SetLevel(component, level string) error {
	lvl, err := ParseLevel(level)
	if err != nil {
		return err
	}
	if component == "" {
		r.def.Set(lvl)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.comps[component]
	if !ok {
		v = new(slog.LevelVar)
		r.comps[component] = v
	}
	v.Set(lvl)
	return nil
}

// Levels reports the default level (key "") and each component's level.
func (r *Root) Levels() map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]string{"": levelName(r.def.Level())}
	for c, v := range r.comps {
		out[c] = levelName(v.Level())
	}
	return out
}

// Components lists the components that have a level of their own, sorted.
func (r *Root) Components() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.comps))
	for c := range r.comps {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func (r *Root) level(comp string) slog.Level {
	r.mu.RLock()
	v, ok := r.comps[comp]
	r.mu.RUnlock()
	if ok {
		return v.Level()
	}
	return r.def.Level()
}

// ParseLevel accepts debug, info, warn (or warning) and error, in any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// Discard returns a logger that drops everything, for tests.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type levelHandler struct {
	root *Root
	comp string
	next slog.Handler
}

func (h *levelHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.root.level(h.comp)
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{root: h.root, comp: h.comp, next: h.next.WithAttrs(as)}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{root: h.root, comp: h.comp, next: h.next.WithGroup(name)}
}
