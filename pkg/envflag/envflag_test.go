package envflag

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type settings struct {
	Name     string
	On       bool
	N        int
	N64      int64
	F        float64
	F32      float32
	Wait     time.Duration
	Addr     netip.Addr
	NoEnvStr string
}

func defaults() settings {
	return settings{Name: "def", N: 3, Wait: time.Second, NoEnvStr: "x"}
}

func register(lookup func(string) (string, bool), s *settings) *Set {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e := NewLookup(fs, lookup)
	e.String(&s.Name, "name", "NAME", "a name")
	e.Bool(&s.On, "on", "ON", "a switch")
	e.Int(&s.N, "n", "N", "a count")
	e.Int64(&s.N64, "n64", "N64", "a big count")
	e.Float64(&s.F, "f", "F", "a ratio")
	e.Float32(&s.F32, "f32", "F32", "a rate")
	e.Duration(&s.Wait, "wait", "WAIT", "a wait")
	e.Text(&s.Addr, "addr", "ADDR", "an address", "an IP address")
	e.String(&s.NoEnvStr, "no-env", "", "no variable")
	return e
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    settings
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "defaults", want: defaults()},
		{
			name: "env sets every kind",
			env: map[string]string{"NAME": "n", "ON": "true", "N": "7", "N64": "9000000000",
				"F": "0.5", "F32": "50", "WAIT": "30s", "ADDR": "10.0.0.9"},
			want: settings{Name: "n", On: true, N: 7, N64: 9000000000, F: 0.5, F32: 50,
				Wait: 30 * time.Second, Addr: netip.MustParseAddr("10.0.0.9"), NoEnvStr: "x"},
		},
		{
			name: "flags win over env",
			env:  map[string]string{"NAME": "from-env", "WAIT": "30s", "ON": "true"},
			args: []string{"--name", "from-flag", "--wait=2m", "--on=false", "--no-env", "y"},
			want: func() settings {
				s := defaults()
				s.Name, s.Wait, s.NoEnvStr = "from-flag", 2*time.Minute, "y"
				return s
			}(),
		},
		{
			name: "bare bool flag",
			args: []string{"--on"},
			want: func() settings { s := defaults(); s.On = true; return s }(),
		},
		{
			name: "empty string env clears, empty typed env is unset",
			env:  map[string]string{"NAME": "", "WAIT": "", "N": ""},
			want: func() settings { s := defaults(); s.Name = ""; return s }(),
		},
		{
			name:    "duration without unit",
			env:     map[string]string{"WAIT": "30"},
			wantErr: []string{`$WAIT="30"`, "duration with a unit"},
		},
		{
			name:    "every malformed variable is named",
			env:     map[string]string{"ON": "yes", "N": "1.5", "F": "half", "ADDR": "nope"},
			wantErr: []string{`$ON="yes": want true or false`, `$N="1.5": want an integer`, `$F="half": want a number`, `$ADDR="nope": want an IP address`},
		},
		{
			name:    "malformed flag names the form",
			args:    []string{"--wait", "5"},
			wantErr: []string{"-wait"},
		},
		{
			name:    "malformed env is an error even when the flag is given",
			env:     map[string]string{"WAIT": "soon"},
			args:    []string{"--wait", "1s"},
			wantErr: []string{"$WAIT"},
		},
		{
			name:    "positional arguments",
			args:    []string{"extra"},
			wantErr: []string{`unexpected arguments ["extra"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaults()
			err := register(env(tt.env), &s).Parse(tt.args)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if d := cmp.Diff(tt.want, s, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
					t.Errorf("settings (-want +got):\n%s", d)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", s)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEnvErrorAs(t *testing.T) {
	s := defaults()
	err := register(env(map[string]string{"N": "many"}), &s).Parse(nil)
	var ee *EnvError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an *EnvError", err)
	}
	if ee.Name != "N" || ee.Value != "many" || ee.Err == nil {
		t.Errorf("EnvError = %+v", ee)
	}
}

func TestUsageNamesVariable(t *testing.T) {
	s := defaults()
	e := register(env(nil), &s)
	var b strings.Builder
	e.FlagSet().SetOutput(&b)
	e.FlagSet().PrintDefaults()
	for _, w := range []string{"a wait ($WAIT)", "a name ($NAME)", "no variable"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("usage lacks %q:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "no variable ($") {
		t.Errorf("flag without a variable names one:\n%s", b.String())
	}
}
