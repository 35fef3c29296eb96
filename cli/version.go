package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/version"
)

// versionInfo is one side's version, with kubectl's JSON field names.
type versionInfo struct {
	GitVersion string `json:"gitVersion"`
	GitCommit  string `json:"gitCommit"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
}

// versionOutput is `version -o json|yaml`.
type versionOutput struct {
	ClientVersion *versionInfo `json:"clientVersion,omitempty"`
	ServerVersion *versionInfo `json:"serverVersion,omitempty"`
}

// newVersionCommand returns `corral version`.
func newVersionCommand(g *globals) *cobra.Command {
	clientOnly := false
	output := ""
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server version information",
		RunE: g.runE(func(ctx context.Context, _ []string) error {
			out := versionOutput{ClientVersion: &versionInfo{
				GitVersion: version.Version,
				GitCommit:  version.GitCommit(),
				GoVersion:  runtime.Version(),
				Platform:   version.Platform(),
			}}
			var serverErr error
			if !clientOnly {
				out.ServerVersion, serverErr = g.serverVersion(ctx)
			}
			if err := printVersion(g, out, output); err != nil {
				return err
			}
			return serverErr
		}),
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "If true, shows client version only (no server required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "One of 'yaml' or 'json'")
	return cmd
}

// serverVersion asks the server for its version.
func (g *globals) serverVersion(ctx context.Context) (*versionInfo, error) {
	var info *versionInfo
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Version(ctx, &corralpb.VersionRequest{})
		if err != nil {
			return fmt.Errorf("server version: %w", err)
		}
		info = &versionInfo{GitVersion: resp.GetVersion(), GitCommit: resp.GetGitCommit(), GoVersion: resp.GetGoVersion(), Platform: resp.GetPlatform()}
		return nil
	})
	return info, err
}

// printVersion prints the versions as text, json or yaml.
func printVersion(g *globals, out versionOutput, format string) error {
	switch format {
	case "":
		g.printf("Client Version: %s\n", out.ClientVersion.GitVersion)
		if out.ServerVersion != nil {
			g.printf("Server Version: %s\n", out.ServerVersion.GitVersion)
		}
		return nil
	case "json":
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		g.printf("%s\n", data)
		return nil
	case "yaml":
		data, err := yaml.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		g.printf("%s", data)
		return nil
	}
	return fmt.Errorf("--output must be 'yaml' or 'json'")
}
