package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PluginType is weft-cni's "type" in a conflist.
const PluginType = "weft-cni"

// Settings are the fields of weft-cni's conflist entry (see cni/plugin
// Config).
type Settings struct {
	AgentSocket    string `json:"agentSocket,omitempty"`
	EnrollmentFile string `json:"enrollmentFile,omitempty"`
	LogFile        string `json:"logFile,omitempty"`
	LogLevel       string `json:"logLevel,omitempty"`
	AddTimeout     string `json:"addTimeout,omitempty"`
}

// entry renders weft-cni's plugin object.
func (s Settings) entry() (json.RawMessage, error) {
	type entry struct {
		Type string `json:"type"`
		Settings
	}
	return json.Marshal(entry{Type: PluginType, Settings: s})
}

var confExts = []string{".conflist", ".conf", ".json"}

// primaryFile picks the conf file the runtime uses: the first by name with
// a CNI extension that parses as JSON. It returns "" if there is none.
func primaryFile(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read cni conf dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !slices.Contains(confExts, filepath.Ext(e.Name())) {
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) == nil {
			return filepath.Join(dir, n), nil
		}
	}
	return "", nil
}

// conf is a parsed CNI config file: a conflist, or a single plugin conf.
type conf struct {
	top     map[string]json.RawMessage
	plugins []json.RawMessage
	single  bool
}

func parseConf(b []byte) (*conf, error) {
	c := &conf{}
	if err := json.Unmarshal(b, &c.top); err != nil {
		return nil, fmt.Errorf("parse cni config: %w", err)
	}
	raw, ok := c.top["plugins"]
	if !ok {
		if _, hasType := c.top["type"]; !hasType {
			return nil, errors.New("parse cni config: neither a conflist (plugins) nor a plugin (type)")
		}
		c.single = true
		return c, nil
	}
	if err := json.Unmarshal(raw, &c.plugins); err != nil {
		return nil, fmt.Errorf("parse cni conflist plugins: %w", err)
	}
	return c, nil
}

func pluginType(raw json.RawMessage) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.Type
}

// toList turns a single-plugin conf into a conflist holding that plugin.
func (c *conf) toList() {
	if !c.single {
		return
	}
	plugin := map[string]json.RawMessage{}
	list := map[string]json.RawMessage{}
	for k, v := range c.top {
		switch k {
		case "cniVersion", "name":
			list[k] = v
			if k == "cniVersion" {
				plugin[k] = v
			}
		default:
			plugin[k] = v
		}
	}
	b, _ := json.Marshal(plugin)
	c.top, c.plugins, c.single = list, []json.RawMessage{b}, false
}

// withPlugin returns the plugins with weft-cni's entry set: replaced where
// it is, or appended at the end.
func withPlugin(plugins []json.RawMessage, entry json.RawMessage) []json.RawMessage {
	out := slices.Clone(plugins)
	for i, p := range out {
		if pluginType(p) == PluginType {
			out[i] = entry
			// Drop any further duplicates.
			return append(out[:i+1], withoutPlugin(out[i+1:])...)
		}
	}
	return append(out, entry)
}

func withoutPlugin(plugins []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	for _, p := range plugins {
		if pluginType(p) != PluginType {
			out = append(out, p)
		}
	}
	return out
}

func (c *conf) encode() ([]byte, error) {
	top := map[string]json.RawMessage{}
	for k, v := range c.top {
		top[k] = v
	}
	if !c.single {
		b, err := json.Marshal(c.plugins)
		if err != nil {
			return nil, err
		}
		top["plugins"] = b
	}
	b, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encode cni config: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encode cni config: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// sameJSON reports whether a and b are equal JSON values.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// writeAtomic replaces path with b via a temp file and rename.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".weft-tmp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
