package server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "auto", want: MemoryLimitAuto},
		{in: "", want: MemoryLimitAuto},
		{in: "off", want: MemoryLimitOff},
		{in: "200Mi", want: 200 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "500M", want: 500_000_000},
		{in: "67108864", want: 64 << 20},
		{in: "lots", wantErr: true},
		{in: "-5Mi", wantErr: true},
		{in: "0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMemoryLimit(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseMemoryLimit(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				back, err := ParseMemoryLimit(FormatMemoryLimit(got))
				if err != nil || back != got {
					t.Errorf("round trip through %q: %d, %v", FormatMemoryLimit(got), back, err)
				}
			}
		})
	}
}

func TestContainerMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2 := write("memory.max", "268435456\n")
	v2max := write("memory.max.unlimited", "max\n")
	v1 := write("memory.limit_in_bytes", "134217728\n")
	v1none := write("memory.limit_in_bytes.unlimited", "9223372036854771712\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		files  []string
		want   int64
		wantOK bool
	}{
		{"cgroup v2", []string{v2, v1}, 256 << 20, true},
		{"cgroup v2 without limit", []string{v2max, v1}, 0, false},
		{"cgroup v1", []string{missing, v1}, 128 << 20, true},
		{"cgroup v1 without limit", []string{missing, v1none}, 0, false},
		{"no cgroup files", []string{missing}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := containerMemoryLimit(tt.files)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("containerMemoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestValidateMemoryLimit(t *testing.T) {
	cfg := Defaults()
	cfg.MemoryLimit = 1 << 20
	if err := cfg.Validate(); err == nil {
		t.Error("a 1Mi memory limit was accepted")
	}
	cfg.MemoryLimit = 64 << 20
	if err := cfg.Validate(); err != nil {
		t.Errorf("64Mi: %v", err)
	}
}
