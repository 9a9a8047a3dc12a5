package envflag

import (
	"encoding"
	"flag"
	"fmt"
	"strconv"
)

// formValue wraps a flag.Value so that a malformed command-line value also
// says which form was expected.
type formValue struct {
	v    flag.Value
	form string
}

func (f formValue) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.String()
}

func (f formValue) Set(s string) error {
	if err := f.v.Set(s); err != nil {
		return fmt.Errorf("want %s: %w", f.form, err)
	}
	return nil
}

// IsBoolFlag keeps boolean values usable as bare flags.
func (f formValue) IsBoolFlag() bool {
	b, ok := f.v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// textValue adapts a TextMarshaler/TextUnmarshaler pair to flag.Value.
type textValue struct {
	p interface {
		encoding.TextMarshaler
		encoding.TextUnmarshaler
	}
}

func (t textValue) String() string {
	if t.p == nil {
		return ""
	}
	b, err := t.p.MarshalText()
	if err != nil {
		return ""
	}
	return string(b)
}

func (t textValue) Set(s string) error { return t.p.UnmarshalText([]byte(s)) }

type float32Value float32

func (f *float32Value) String() string {
	if f == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*f), 'g', -1, 32)
}

func (f *float32Value) Set(s string) error {
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return err
	}
	*f = float32Value(v)
	return nil
}
