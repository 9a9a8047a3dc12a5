// Package server runs one waypoint instance: it obtains the waypoint's
// certificate from the CA, subscribes over one delta xDS stream to workload
// discovery, L4 policies and the three weft.l7.v1 types, serves HBONE on
// 15008 with the HTTP and TCP proxies behind it, and serves readiness
// (15021), metrics (15020) and the localhost admin endpoint (15000).
package server
