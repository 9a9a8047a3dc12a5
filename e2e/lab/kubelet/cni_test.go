package kubelet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrapPluginConf(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    []string // list name, cniVersion, then plugin types
		wantErr bool
	}{
		{
			name: "single plugin",
			conf: `{"cniVersion":"1.0.0","name":"lab","type":"ptp","ipam":{"type":"host-local"}}`,
			want: []string{"lab", "1.0.0", "ptp"},
		},
		{name: "no type", conf: `{"cniVersion":"1.0.0","name":"lab"}`, wantErr: true},
		{name: "not json", conf: `{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := wrapPluginConf([]byte(tt.conf))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("wrapPluginConf(%s) = %+v, want an error", tt.conf, l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{l.Name, l.CNIVersion}
			for _, p := range l.Plugins {
				got = append(got, p.Network.Type)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("wrapped list (-want +got):\n%s", diff)
			}
		})
	}
}
