// Package l4authz is the L4 authorization engine of ztunnel and the
// waypoint. It compiles the
// istio.security Authorization resources received over xDS into matchers
// once, and then decides each inbound connection against the policies that
// apply to its destination workload with Istio's precedence: a matching DENY
// denies; otherwise, when no ALLOW policy applies the connection is allowed;
// otherwise any matching ALLOW allows and anything else is denied. Dry-run
// policies are evaluated and reported but never decide.
package l4authz
