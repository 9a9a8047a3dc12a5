// Package images builds Weft's container images without a container
// engine: each image is a small base layer (passwd and group entries for
// root and the non-root user 65532, a world-writable /tmp) plus one layer
// holding the component's statically linked binaries under
// /usr/local/bin, with the entrypoint, user and OCI labels set in its
// config. A component that runs a distribution's tool gets one more layer
// between the two: the CNI agent carries the build machine's iptables
// (nft and legacy, with their extension modules), copied with every shared
// library and the loader it needs (Spec.HostTools). Images are written as tarballs that `docker load`, `crane push`
// and go-containerregistry's tarball package read, named
// <repository>/<binary>:<tag> (weft/ztunnel:v0.1.0 by default).
//
// Layers are reproducible: fixed file times, owners and order, so the
// same binaries always give the same digests.
package images
