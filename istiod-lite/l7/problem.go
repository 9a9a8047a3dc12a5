package l7

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ObjectRef identifies an input object in reports.
type ObjectRef struct {
	// Kind is HTTPRoute, GRPCRoute, AuthorizationPolicy or DestinationRule.
	Kind       string
	APIVersion string
	Namespace  string
	Name       string
	UID        types.UID
	Generation int64
}

func (r ObjectRef) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// FieldError says what is wrong with one field of an input object. Field
// is a JSON path such as "spec.rules[0].filters[1].type".
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Report is the translation outcome of one input object that had
// problems, or that had problems before and has none now.
type Report struct {
	Ref ObjectRef
	// Rejected: the object was skipped entirely and serves nothing.
	Rejected bool
	// Problems are the fields that were wrong, unsupported or ignored;
	// empty when the object is valid (routes are reported once per
	// generation, valid or not, so their status can be written; other
	// kinds when their problems change).
	Problems []*FieldError
	// Parents, for HTTPRoutes and GRPCRoutes, are the Service parentRefs
	// with the outcome for each.
	Parents []ParentStatus

	retry bool // a reporter's retry of a failed write
}

// ParentStatus is the outcome of one Service parentRef of a route.
type ParentStatus struct {
	Ref gatewayv1.ParentReference
	// Problem says why the route is not attached to this parent; empty
	// when it is (unless the whole route is Rejected).
	Problem string
}

// Message summarises the problems in one line, for events and logs.
func (r Report) Message() string {
	parts := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		parts[i] = p.Error()
	}
	verdict := "accepted with problems: "
	if r.Rejected {
		verdict = "rejected: "
	}
	return verdict + strings.Join(parts, "; ")
}

// Reporter publishes translation problems (as Kubernetes Events, route
// status, logs). Report is called with the controller's lock released,
// possibly from several goroutines, and must not block for long.
type Reporter interface {
	Report(Report)
}

// problems collects field errors while translating one object.
type problems struct {
	list  []*FieldError
	fatal bool
}

// reject records a problem that makes the object unusable.
func (p *problems) reject(field, format string, args ...any) {
	p.list = append(p.list, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	p.fatal = true
}

// warn records a problem the translation worked around.
func (p *problems) warn(field, format string, args ...any) {
	p.list = append(p.list, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}
