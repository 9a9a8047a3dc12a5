// Package envflag binds command-line flags to environment variables the same
// way for every Weft binary: the environment variable, when set, becomes the
// flag's default, a flag given on the command line wins over it, and a
// malformed value in either place is an error that names the variable (or
// flag) and the form it expects, instead of being silently ignored.
//
// A binary registers its flags on a Set, calls Parse, and then reads the
// variables it bound:
//
//	fs := flag.NewFlagSet("ztunnel", flag.ContinueOnError)
//	e := envflag.New(fs)
//	e.String(&cfg.NodeName, "node-name", "NODE_NAME", "Kubernetes node name")
//	e.Duration(&cfg.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", "graceful drain bound")
//	if err := e.Parse(args); err != nil { ... }
package envflag
