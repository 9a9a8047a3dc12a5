// Package ratelimit implements the waypoint's local rate limiting: token
// buckets configured by a route's l7api.RateLimit, one per route or one
// per source identity, with a bounded key set so that a flood of distinct
// sources cannot grow memory without limit. Over the limit the proxy
// answers 429 with the retry-after that Allow returns.
package ratelimit
