// Package mesh holds the end-to-end suites of the L4 mesh: they start a
// two-node lab, install Weft with the same manifests a user applies
// (kubectl apply -k manifests/), deploy the sample apps in namespace demo
// and check enrollment by label, HBONE with the client's SPIFFE identity,
// L4 authorization, peer authentication and traffic to and from pods
// outside the mesh. The tests carry the build tag e2e and need root:
//
//	go test -tags e2e -count=1 -timeout 30m ./e2e/mesh/
//
// One lab serves every test of the binary (TestMain); each test puts the
// namespaces, labels and policies it changes back as they were.
package mesh
