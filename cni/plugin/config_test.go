package plugin

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzParseConfig: any stdin either parses or yields a CNI error, never a
// panic or a bare error.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}}`))
	f.Add([]byte(`{"cniVersion":"0.4.0","name":"n","type":"weft-cni","addTimeout":"1s","logLevel":"debug"}`))
	f.Add([]byte(`{"prevResult":{"ips":"x"}}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, needPrev := range []bool{false, true} {
			conf, err := parseConfig(b, needPrev)
			if err != nil {
				var e *types.Error
				if !errors.As(err, &e) || e.Msg == "" {
					t.Fatalf("not a CNI error: %#v", err)
				}
				continue
			}
			if needPrev && conf.PrevResult == nil {
				t.Fatal("accepted without prevResult")
			}
			if conf.addTimeout <= 0 || conf.AgentSocket == "" {
				t.Fatalf("defaults missing: %+v", conf)
			}
		}
	})
}

func TestParseK8sArgs(t *testing.T) {
	a, err := parseK8sArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web;K8S_POD_UID=u1;OTHER=x")
	if err != nil {
		t.Fatal(err)
	}
	if a.K8S_POD_NAMESPACE != "demo" || a.K8S_POD_NAME != "web" || a.K8S_POD_UID != "u1" {
		t.Fatalf("%+v", a)
	}
	if _, err := parseK8sArgs("garbage"); err == nil {
		t.Fatal("garbage CNI_ARGS accepted")
	}
}
