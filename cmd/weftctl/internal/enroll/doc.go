// Package enroll puts namespaces into the ambient mesh and takes them out
// (the istio.io/dataplane-mode label), and waits until every pod carries
// the node agent's ambient.istio.io/redirection annotation, naming the pods
// that do not and why.
package enroll
