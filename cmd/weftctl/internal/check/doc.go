// Package check runs weftctl's health checks in the style of `linkerd
// check`: categories of named checks, each passing (√), warning (‼) or
// failing (×) with one hint per problem, printed as text or JSON.
package check
