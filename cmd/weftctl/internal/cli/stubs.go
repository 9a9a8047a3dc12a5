package cli

import "github.com/spf13/cobra"

func newBugReportCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "bug-report", Example: "  weftctl bug-report"}
}
