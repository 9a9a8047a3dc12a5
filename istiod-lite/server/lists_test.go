package server

import (
	"testing"

	clientfeatures "k8s.io/client-go/features"
)

func TestPreferListsRespectsTheEnvironment(t *testing.T) {
	t.Setenv(watchListEnv, "true")
	if preferLists() {
		t.Error("changed the setting although KUBE_FEATURE_WatchListClient is set")
	}
}

func TestPreferLists(t *testing.T) {
	// The feature gate is process-wide; other tests in this package run
	// with it off too (their fake clientsets cannot stream).
	if !preferLists() {
		t.Skip("client-go's feature gates cannot be set here")
	}
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Error("watch-list still enabled")
	}
}
