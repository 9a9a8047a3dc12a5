// Package controlplane holds the end-to-end tests of istiod-lite on the lab
// cluster (package e2e/lab): its certificate authority against the real
// API server's TokenReview and TokenRequest, its workload discovery over
// delta xDS as a ztunnel sees it, the waypoint L7 configuration (routes,
// traffic and L7 policies, route status and events) as a waypoint sees it,
// and the scale benchmark against the lab's API server. The tests are
// behind the build tag e2e and need root (and `make build`: the lab runs
// _output/bin/istiod-lite):
//
//	go test -tags e2e -count=1 -v -timeout 20m ./e2e/controlplane
//	go test -tags e2e -count=1 -run '^$' -bench Scale -benchtime 1x -timeout 40m ./e2e/controlplane
package controlplane
