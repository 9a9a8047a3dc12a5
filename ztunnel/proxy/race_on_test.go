//go:build race

package proxy_test

// raceEnabled reports a -race build (its goroutine limit rules out tests
// that hold tens of thousands of connections).
const raceEnabled = true
