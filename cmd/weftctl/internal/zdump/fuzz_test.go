package zdump

import (
	"os"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bodies to Parse and renders whatever parses:
// a broken or hostile ztunnel must not crash weftctl.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/config_dump.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"workloads":[{"uid":"u","addresses":["AQID"]}],"services":[{"addresses":[{"address":"CgAAAQ=="}]}]}`))
	f.Add([]byte(`{"certificates":[{"chainPem":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			return
		}
		for _, f := range []Filter{{}, {Namespace: "demo", Address: "10.0.0.1", Node: "n"}} {
			Workloads(d, f)
			Services(d, f)
			Policies(d, f)
			Connections(d, f)
		}
		Certificates(d, time.Unix(0, 0))
	})
}
