// Package printer writes weftctl's output in the kubectl habits: aligned
// tables by default (wide adds columns), or the object as JSON or YAML.
package printer
