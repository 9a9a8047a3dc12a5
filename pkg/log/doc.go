// Package log sets up log/slog the same way for every Weft binary: JSON or
// text output, a global level that can be changed at run time (the admin
// endpoints' /logging hook), and per-component loggers whose level can be
// set on their own.
package log
