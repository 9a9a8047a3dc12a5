package node

import (
	"context"
	"log/slog"
)

// releaseStartup waits until every channel in ready is closed (ztunnel has
// its workload snapshot and its first xDS state: start-up is over), then
// drops from the resident set the executable's pages that start-up alone
// touched (releaseStartupPages). It returns early, doing nothing, if ctx
// ends first.
func releaseStartup(ctx context.Context, lg *slog.Logger, ready ...<-chan struct{}) {
	for _, ch := range ready {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
	n, err := releaseStartupPages()
	if err != nil {
		lg.Warn("start-up pages not released", "error", err)
		return
	}
	lg.Info("start-up pages released", "executable_bytes", n)
}
