package install

import (
	"encoding/json"
	"testing"
)

// FuzzInsert feeds arbitrary primary configs to the insertion logic: it
// must either refuse the input or produce a conflist that ends with exactly
// one weft-cni entry and keeps every other plugin in order.
func FuzzInsert(f *testing.F) {
	f.Add([]byte(primaryList))
	f.Add([]byte(`{"cniVersion":"0.4.0","name":"net","type":"bridge"}`))
	f.Add([]byte(`{"name":"x","plugins":[{"type":"weft-cni"},{"type":"ptp"},{"type":"weft-cni"}]}`))
	f.Add([]byte(`{"plugins":null}`))
	f.Add([]byte(`[]`))
	entry, err := settings.entry()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConf(b)
		if err != nil {
			return
		}
		var others []string
		if c.single {
			others = []string{"single"}
		} else {
			for _, p := range c.plugins {
				if pluginType(p) != PluginType {
					others = append(others, string(p))
				}
			}
		}
		c.toList()
		c.plugins = withPlugin(c.plugins, entry)
		out, err := c.encode()
		if err != nil {
			return
		}
		again, err := parseConf(out)
		if err != nil || again.single {
			t.Fatalf("output does not parse as a conflist: %v\n%s", err, out)
		}
		n := 0
		var kept []string
		for _, p := range again.plugins {
			if pluginType(p) == PluginType {
				n++
				continue
			}
			kept = append(kept, string(p))
		}
		if n != 1 {
			t.Fatalf("%d weft-cni entries in\n%s", n, out)
		}
		if others != nil && others[0] != "single" {
			if len(kept) != len(others) {
				t.Fatalf("other plugins changed: %d -> %d", len(others), len(kept))
			}
			for i := range kept {
				var x, y any
				_ = json.Unmarshal([]byte(kept[i]), &x)
				_ = json.Unmarshal([]byte(others[i]), &y)
				xb, _ := json.Marshal(x)
				yb, _ := json.Marshal(y)
				if string(xb) != string(yb) {
					t.Fatalf("plugin %d changed: %s -> %s", i, others[i], kept[i])
				}
			}
		}
	})
}
