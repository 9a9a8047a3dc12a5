// Command weftctl operates a Weft ambient mesh: it enrolls namespaces,
// manages waypoints, shows what each ztunnel knows and checks the install.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/cmd/weftctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, cli.DefaultEnv(os.Stdout, os.Stderr), os.Args[1:])
	stop()
	os.Exit(code)
}
