package log

import "flag"

// Flags are the logging flags every binary registers.
type Flags struct {
	Format string
	Level  string
}

// Register adds --log-format and --log-level to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Format, "log-format", string(FormatJSON), "log encoding: json or text")
	fs.StringVar(&f.Level, "log-level", "info", "default log level: debug, info, warn or error")
}

// Options turns the flags into Options for New.
func (f Flags) Options() Options {
	return Options{Format: Format(f.Format), Level: f.Level}
}
