package envflag

import (
	"flag"
	"strconv"
	"testing"
	"time"
)

// FuzzEnvValues sets every typed flag's environment variable to the same
// input: Parse never panics, rejects exactly what strconv/time reject, and
// a value it accepts is the one they parse. A command-line value wins
// over the environment.
func FuzzEnvValues(f *testing.F) {
	for _, s := range []string{"", "1", "true", "-7", "0.5", "1e309", "10s", "0x10", " 3", "NaN", "9223372036854775808"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, v string, onCommandLine bool) {
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(discard{})
		env := map[string]string{"B": v, "I": v, "I64": v, "F": v, "D": v, "S": v}
		s := NewLookup(fs, func(k string) (string, bool) { x, ok := env[k]; return x, ok })
		var (
			b   bool
			i   int
			i64 int64
			f64 float64
			d   time.Duration
			str = "default"
		)
		s.Bool(&b, "b", "B", "")
		s.Int(&i, "i", "I", "")
		s.Int64(&i64, "i64", "I64", "")
		s.Float64(&f64, "f", "F", "")
		s.Duration(&d, "d", "D", "")
		s.String(&str, "s", "S", "")
		var args []string
		if onCommandLine {
			args = []string{"-s=cli"}
		}
		err := s.Parse(args)
		want := func(e error) bool { return v == "" || e == nil }
		_, eb := strconv.ParseBool(v)
		_, ei := strconv.ParseInt(v, 10, strconv.IntSize)
		_, ei64 := strconv.ParseInt(v, 10, 64)
		_, ef := strconv.ParseFloat(v, 64)
		_, ed := time.ParseDuration(v)
		allOK := want(eb) && want(ei) && want(ei64) && want(ef) && want(ed)
		if err != nil {
			if allOK {
				t.Fatalf("Parse rejected %q that every type accepts: %v", v, err)
			}
			return
		}
		if !allOK {
			t.Fatalf("Parse accepted %q though a type rejects it (bool %v, int %v, int64 %v, float %v, duration %v)", v, eb, ei, ei64, ef, ed)
		}
		wantStr := v
		if onCommandLine {
			wantStr = "cli"
		}
		if str != wantStr {
			t.Fatalf("string flag %q, want %q", str, wantStr)
		}
		if v == "" {
			return
		}
		if x, _ := strconv.ParseInt(v, 10, 64); i64 != x {
			t.Fatalf("int64 %d, want %d from %q", i64, x, v)
		}
		if x, _ := time.ParseDuration(v); d != x {
			t.Fatalf("duration %v, want %v from %q", d, x, v)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
