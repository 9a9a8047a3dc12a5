package scale

import (
	"context"
	"errors"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
	"google.golang.org/protobuf/proto"
)

// observer records what every benchmark client holds and when each
// workload last arrived at each client.
type observer struct {
	mu      sync.Mutex
	clients []*clientState
	changed chan struct{}
}

type clientState struct {
	o       *observer
	status  map[string]workloadapi.WorkloadStatus // workload uid -> status
	arrived map[string]time.Time
}

func newObserver() *observer { return &observer{changed: make(chan struct{}, 1)} }

func (o *observer) client(int) xdsclient.Handler {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := &clientState{o: o, status: map[string]workloadapi.WorkloadStatus{}, arrived: map[string]time.Time{}}
	o.clients = append(o.clients, c)
	return c
}

// Apply implements xdsclient.Handler.
func (c *clientState) Apply(typeURL string, rs []*discoveryv3.Resource, removed []string) error {
	if typeURL != xdsclient.AddressType {
		return nil
	}
	now := time.Now()
	var decoded []*workloadapi.Workload
	for _, r := range rs {
		var a workloadapi.Address
		if err := proto.Unmarshal(r.GetResource().GetValue(), &a); err != nil {
			return err
		}
		if w := a.GetWorkload(); w != nil {
			decoded = append(decoded, w)
		}
	}
	c.o.mu.Lock()
	for _, w := range decoded {
		c.status[w.GetUid()] = w.GetStatus()
		c.arrived[w.GetUid()] = now
	}
	for _, n := range removed {
		delete(c.status, n)
		c.arrived[n] = now
	}
	c.o.mu.Unlock()
	select {
	case c.o.changed <- struct{}{}:
	default:
	}
	return nil
}

func (o *observer) allHave(uids []string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.clients {
		if len(c.status) < len(uids) {
			return false
		}
		for _, u := range uids {
			if _, ok := c.status[u]; !ok {
				return false
			}
		}
	}
	return true
}

func (o *observer) allStatus(uid string, want workloadapi.WorkloadStatus) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.clients {
		if st, ok := c.status[uid]; !ok || st != want {
			return false
		}
	}
	return true
}

func (o *observer) noneHave(uid string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.clients {
		if _, ok := c.status[uid]; ok {
			return false
		}
	}
	return true
}

// lastArrival is the latest time any client received uid.
func (o *observer) lastArrival(uid string) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	for _, c := range o.clients {
		if t := c.arrived[uid]; t.After(last) {
			last = t
		}
	}
	return last
}

// wait polls cond on every client update (and every 50 ms) until it holds.
func (o *observer) wait(ctx context.Context, limit time.Duration, cond func() bool) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return errors.New("timed out")
		case <-o.changed:
		case <-tick.C:
		}
	}
	return nil
}
