package kube

import (
	"k8s.io/client-go/tools/cache"
)

// handler adapts typed upsert/delete functions to informer callbacks,
// unwrapping delete tombstones.
func handler[T interface {
	GetNamespace() string
	GetName() string
}](upsert func(T), del func(ns, name string)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(T); ok {
				del(o.GetNamespace(), o.GetName())
			}
		},
	}
}
