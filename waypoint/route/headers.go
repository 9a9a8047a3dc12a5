package route

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// headerOp is one compiled HeaderModifier. Operations on "Host" change
// the request's Host instead of its header map.
type headerOp struct {
	op    l7api.HeaderModifier_Op
	name  string // canonical
	value string
	host  bool
}

func compileHeaderOps(field string, mods []*l7api.HeaderModifier, request bool) ([]headerOp, error) {
	if len(mods) == 0 {
		return nil, nil
	}
	ops := make([]headerOp, 0, len(mods))
	for i, m := range mods {
		name := m.GetName()
		if name == "" || !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("%s[%d]: invalid header name %q", field, i, name)
		}
		op := headerOp{op: m.GetOp(), name: http.CanonicalHeaderKey(name), value: m.GetValue()}
		switch op.op {
		case l7api.HeaderModifier_SET, l7api.HeaderModifier_ADD:
			if !httpguts.ValidHeaderFieldValue(op.value) {
				return nil, fmt.Errorf("%s[%d]: invalid value for %q", field, i, name)
			}
		case l7api.HeaderModifier_REMOVE:
		default:
			return nil, fmt.Errorf("%s[%d]: unknown op %d", field, i, op.op)
		}
		if request && strings.EqualFold(name, "host") {
			if op.op == l7api.HeaderModifier_REMOVE {
				return nil, fmt.Errorf("%s[%d]: the host header cannot be removed", field, i)
			}
			if err := checkHostname(hostOnly(op.value)); err != nil || op.value == "" {
				return nil, fmt.Errorf("%s[%d]: host %q is not a host", field, i, op.value)
			}
			op.host = true
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func applyRequestOps(ops []headerOp, r *http.Request) {
	for i := range ops {
		if ops[i].host {
			r.Host = ops[i].value
			continue
		}
		applyOp(&ops[i], r.Header)
	}
}

func applyHeaderOps(ops []headerOp, h http.Header) {
	for i := range ops {
		applyOp(&ops[i], h)
	}
}

func applyOp(op *headerOp, h http.Header) {
	switch op.op {
	case l7api.HeaderModifier_SET:
		h[op.name] = []string{op.value}
	case l7api.HeaderModifier_ADD:
		h[op.name] = append(h[op.name], op.value)
	case l7api.HeaderModifier_REMOVE:
		delete(h, op.name)
	}
}
