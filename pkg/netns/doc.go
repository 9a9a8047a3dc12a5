// Package netns is the one way Weft code runs in another network namespace.
//
// A NetNS is an open handle (a file descriptor) on a network namespace. Do
// runs a function on a locked OS thread that has switched into the namespace
// and always switches back before the thread is released; if switching back
// fails the thread stays locked so the Go runtime discards it instead of
// reusing a thread in the wrong namespace. Listen, ListenPacket and Dial
// create sockets inside the namespace; a socket stays in the namespace it was
// created in, so the returned sockets can then be used from any goroutine.
//
// Only Linux is supported; on other systems every function returns
// ErrNotSupported.
package netns
