package envflag

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Set binds flags of one flag.FlagSet to environment variables. Register
// every flag through it, then call Parse once. A Set is not safe for
// concurrent use; use it from main during start-up.
type Set struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Set that registers flags on fs and reads the process
// environment.
func New(fs *flag.FlagSet) *Set {
	return NewLookup(fs, os.LookupEnv)
}

// NewLookup is New with the environment read through lookup (for tests and
// for binaries that take their settings from somewhere else).
func NewLookup(fs *flag.FlagSet, lookup func(string) (string, bool)) *Set {
	return &Set{fs: fs, lookup: lookup}
}

// FlagSet returns the underlying flag set, to register flags that have no
// environment variable.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// String binds a string flag. Its default is *p, or the value of env when
// env is set: unlike the typed flags, an env set to the empty string
// clears the default.
func (s *Set) String(p *string, name, env, usage string) {
	if v, ok := s.lookupEnv(env); ok {
		*p = v
	}
	s.fs.StringVar(p, name, *p, withEnv(usage, env))
}

// Bool binds a boolean flag (usable bare, --name, or as --name=false). env,
// when set and not empty, must hold a value strconv.ParseBool accepts: 1,
// t, T, true, TRUE, True, 0, f, F, false, FALSE, False.
func (s *Set) Bool(p *bool, name, env, usage string) {
	s.fromEnv(env, "true or false", func(v string) (err error) { *p, err = parseInto(*p, v, strconv.ParseBool); return err })
	s.fs.BoolVar(p, name, *p, withEnv(usage, env))
}

// Int binds an integer flag. env, when set and not empty, must hold a
// decimal integer.
func (s *Set) Int(p *int, name, env, usage string) {
	s.fromEnv(env, "an integer", func(v string) (err error) { *p, err = parseInto(*p, v, strconv.Atoi); return err })
	s.fs.IntVar(p, name, *p, withEnv(usage, env))
}

// Int64 binds a 64-bit integer flag. env, when set and not empty, must hold
// a decimal integer.
func (s *Set) Int64(p *int64, name, env, usage string) {
	parse := func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }
	s.fromEnv(env, "an integer", func(v string) (err error) { *p, err = parseInto(*p, v, parse); return err })
	s.fs.Int64Var(p, name, *p, withEnv(usage, env))
}

// Float64 binds a floating-point flag. env, when set and not empty, must
// hold a number such as 50 or 0.5.
func (s *Set) Float64(p *float64, name, env, usage string) {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	s.fromEnv(env, formNumber, func(v string) (err error) { *p, err = parseInto(*p, v, parse); return err })
	s.fs.Float64Var(p, name, *p, withEnv(usage, env))
}

// Float32 binds a single-precision floating-point flag, with the same
// rules as Float64.
func (s *Set) Float32(p *float32, name, env, usage string) {
	s.fromEnv(env, formNumber, (*float32Value)(p).Set)
	s.fs.Var((*float32Value)(p), name, withEnv(usage, env))
}

// Duration binds a duration flag. env, when set and not empty, must hold a
// value time.ParseDuration accepts; a bare number such as "30" is an error
// because it has no unit.
func (s *Set) Duration(p *time.Duration, name, env, usage string) {
	s.fromEnv(env, "a duration with a unit such as 30s or 1m30s", func(v string) (err error) {
		*p, err = parseInto(*p, v, time.ParseDuration)
		return err
	})
	s.fs.DurationVar(p, name, *p, withEnv(usage, env))
}

// Text binds a flag whose value is parsed by p's UnmarshalText, for example
// a *netip.Addr. form describes the expected value in errors ("an IP
// address"). env, when set and not empty, is parsed the same way.
func (s *Set) Text(p interface {
	encoding.TextMarshaler
	encoding.TextUnmarshaler
}, name, env, usage, form string) {
	s.Var(textValue{p}, name, env, usage, form)
}

// Var binds a flag of any flag.Value; v's current value is the default.
// env, when set and not empty, is passed to v.Set; form describes the
// expected value in errors, for the variable and for the flag. An empty env
// means no environment variable.
func (s *Set) Var(v flag.Value, name, env, usage, form string) {
	s.fromEnv(env, form, v.Set)
	s.fs.Var(formValue{v, form}, name, withEnv(usage, env))
}

// Parse reports every malformed environment variable seen while the flags
// were registered, then parses args. Arguments left after the flags are an
// error: Weft binaries take none.
func (s *Set) Parse(args []string) error {
	if err := errors.Join(s.errs...); err != nil {
		return err
	}
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", s.fs.Args())
	}
	return nil
}

// fromEnv passes env's value to set when env is set and not empty, and
// records an error naming env and form when set fails.
func (s *Set) fromEnv(env, form string, set func(string) error) {
	raw, ok := s.lookupEnv(env)
	if !ok || raw == "" {
		return
	}
	if err := set(raw); err != nil {
		s.errs = append(s.errs, &EnvError{Name: env, Value: raw, Form: form, Err: err})
	}
}

// parseInto returns parse(v), or old when parse fails.
func parseInto[T any](old T, v string, parse func(string) (T, error)) (T, error) {
	x, err := parse(v)
	if err != nil {
		return old, err
	}
	return x, nil
}

const formNumber = "a number such as 50 or 0.5"

func (s *Set) lookupEnv(env string) (string, bool) {
	if env == "" {
		return "", false
	}
	return s.lookup(env)
}

func withEnv(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " ($" + env + ")"
}

// EnvError is a malformed environment variable. Parse returns it, joined
// with the others when several are malformed; errors.As finds it.
type EnvError struct {
	Name  string // the variable, e.g. DRAIN_TIMEOUT
	Value string // what it held
	Form  string // what was expected, e.g. "a duration with a unit such as 30s"
	Err   error  // the parser's error
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("$%s=%q: want %s", e.Name, e.Value, e.Form)
}

// Unwrap returns the parser's error.
func (e *EnvError) Unwrap() error { return e.Err }
