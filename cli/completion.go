package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCommand returns `corral completion bash|zsh|fish`.
func newCompletionCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion SHELL",
		Short: "Output shell completion code for the specified shell (bash, zsh or fish)",
		Example: `  source <(corral completion bash)
  corral completion zsh > "${fpath[1]}/_corral"
  corral completion fish > ~/.config/fish/completions/corral.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
	}
	cmd.RunE = g.runE(func(_ context.Context, args []string) error {
		if len(args) != 1 {
			return kubectlError("Shell not specified.")
		}
		return writeCompletion(g, cmd.Root(), args[0])
	})
	return cmd
}

// writeCompletion writes the completion script of a shell for root.
func writeCompletion(g *globals, root *cobra.Command, shell string) error {
	var err error
	switch shell {
	case "bash":
		err = root.GenBashCompletionV2(g.out, true)
	case "zsh":
		err = root.GenZshCompletion(g.out)
	case "fish":
		err = root.GenFishCompletion(g.out, true)
	default:
		return kubectlErrorf("Unsupported shell type %q.", shell)
	}
	if err != nil {
		return fmt.Errorf("generate %s completion: %w", shell, err)
	}
	return nil
}
