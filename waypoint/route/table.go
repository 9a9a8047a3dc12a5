package route

import (
	"errors"
	"math/rand/v2"
	"net/http"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Rand is a source of uniformly distributed random numbers, used to pick
// weighted backends and mirror percentages. Match calls it from many
// goroutines at once, so it must be safe for concurrent use (a
// *math/rand/v2.Rand is not; wrap it with a mutex in tests).
type Rand interface {
	Uint64() uint64
}

// Option configures Compile.
type Option func(*options)

type options struct {
	rnd Rand
}

// WithRand makes the Table draw from r instead of the runtime's
// goroutine-safe generator. Tests use it for deterministic choices.
func WithRand(r Rand) Option {
	return func(o *options) { o.rnd = r }
}

type runtimeRand struct{}

func (runtimeRand) Uint64() uint64 { return rand.Uint64() }

// Table is a compiled, immutable set of routes keyed by service hostname.
// It is safe for concurrent use; a new configuration means a new Table.
type Table struct {
	rnd Rand
}

// Compile validates and compiles cfgs. Errors name the RouteConfig (by
// hostname), the route (by name) and the offending field. Two
// RouteConfigs for the same hostname are an error.
func Compile(cfgs []*l7api.RouteConfig, opts ...Option) (*Table, error) {
	return nil, errors.New("route: not implemented")
}

// Match returns what to do with r, addressed to the Service with hostname
// host (resolved by the waypoint from the HBONE authority; compared
// case-insensitively) on Service port port. It does not modify r and does
// not allocate unless the decision is a redirect or drops a mirror.
func (t *Table) Match(host string, port uint16, r *http.Request) Decision {
	return Decision{}
}
