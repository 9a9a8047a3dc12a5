package model

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs of the resources the model produces.
const (
	AddressType       = "type.googleapis.com/istio.workload.Address"
	AuthorizationType = "type.googleapis.com/istio.security.Authorization"
)

// Resource is one derived xDS resource. It is immutable once published:
// readers may keep and share it without copying.
type Resource struct {
	// Name is the xDS resource name: a workload uid, "<ns>/<hostname>" for a
	// service, or "<ns>/<name>" for an authorization.
	Name string
	// Aliases are the other names a client may subscribe by:
	// "<network>/<ip>" for each address.
	Aliases []string
	// Version is a hash of the content: equal content, equal version, on
	// every replica.
	Version string
	// Any is the marshaled resource, ready to send; do not modify it. Only
	// this encoded form is kept, to keep the model small.
	Any *anypb.Any
}

// Decode unmarshals the resource (an *workloadapi.Address or
// *securityapi.Authorization) into a new message.
func (r *Resource) Decode() (proto.Message, error) {
	m, err := r.Any.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", r.Name, err)
	}
	return m, nil
}

// NewResource marshals msg deterministically into a Resource whose version
// is a hash of the content; other producers of xDS resources (the waypoint
// L7 translator) use it so that versions agree across replicas.
func NewResource(name string, aliases []string, msg proto.Message) (*Resource, error) {
	return newResource(name, aliases, msg)
}

func newResource(name string, aliases []string, msg proto.Message) (*Resource, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", name, err)
	}
	h := fnv.New64a()
	h.Write(b)
	return &Resource{
		Name:    name,
		Aliases: aliases,
		Version: hex.EncodeToString(h.Sum(nil)),
		Any:     &anypb.Any{TypeUrl: "type.googleapis.com/" + string(msg.ProtoReflect().Descriptor().FullName()), Value: b},
	}, nil
}

func sameResource(a, b *Resource) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Version != b.Version || len(a.Aliases) != len(b.Aliases) {
		return false
	}
	for i := range a.Aliases {
		if a.Aliases[i] != b.Aliases[i] {
			return false
		}
	}
	return true
}
