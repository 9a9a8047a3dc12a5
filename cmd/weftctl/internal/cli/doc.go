// Package cli is weftctl's command tree: the global kubeconfig and output
// flags, and the commands that enroll namespaces, manage waypoints, read
// ztunnel's configuration and check or diagnose an installation.
package cli
