package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// diffOptions are the flags of `corral diff`.
type diffOptions struct {
	g         *globals
	files     []string
	recursive bool
}

// newDiffCommand returns `corral diff`.
func newDiffCommand(g *globals) *cobra.Command {
	o := &diffOptions{g: g}
	cmd := &cobra.Command{
		Use:   "diff -f FILENAME",
		Short: "Diff the live version against a would-be applied version",
		Long: `Diff configurations specified by file name or stdin between the current online
configuration, and the configuration as it would be if applied.

The output is that of "diff -u -N" between two directories of YAML files named
GROUP.VERSION.KIND.NAMESPACE.NAME, the live objects and the objects as a server-side
dry run of the apply returns them. KUBECTL_EXTERNAL_DIFF names another program to run
instead (for example "colordiff -N -u"); it gets the two directories as its last
arguments.

Exit status: 0 no differences were found, 1 differences were found, >1 corral or diff
failed with an error.`,
		Example: `  # Diff the tutorial's DaemonSet against what the cluster runs
  corral diff -f daemonset-basic.yml

  # Diff a whole directory before applying it
  corral diff -f manifests/ -R && echo "nothing to apply"`,
	}
	cmd.RunE = g.runE(func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return o.run(ctx)
	})
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "Filename, directory, or URL to files contains the configuration to diff")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
	return cmd
}

// run executes `corral diff`. An error exits 2 or more, as kubectl diff.
func (o *diffOptions) run(ctx context.Context) error {
	code, err := o.diff(ctx)
	if err != nil {
		o.g.printErr(err)
		return &reportedError{err: &exitCodeError{code: max(code, 2)}}
	}
	if code != 0 {
		return &reportedError{err: &exitCodeError{code: code}}
	}
	return nil
}

// diff writes the live and the merged objects to two directories and runs
// the diff program on them; it returns the program's exit status.
func (o *diffOptions) diff(ctx context.Context) (int, error) {
	if len(o.files) == 0 {
		return 0, errors.New("must specify one of -f and -k")
	}
	objs, err := o.g.readManifests(o.files, o.recursive, "diff")
	if err != nil {
		return 0, err
	}
	live, err := os.MkdirTemp("", "LIVE-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(live)
	merged, err := os.MkdirTemp("", "MERGED-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(merged)
	pairs, err := o.pairs(ctx, objs)
	if err != nil {
		return 0, err
	}
	for _, p := range pairs {
		name := diffFileName(p.merged)
		if err := writeDiffFile(filepath.Join(merged, name), p.merged); err != nil {
			return 0, err
		}
		if p.live != nil {
			if err := writeDiffFile(filepath.Join(live, name), p.live); err != nil {
				return 0, err
			}
		}
	}
	return o.runDiff(ctx, live, merged)
}

// diffPair is an object as it is (nil: not there) and as the apply
// would leave it.
type diffPair struct{ live, merged *corralpb.Object }

// diffAttempts bounds how often pairs reads again because an object
// changed between the dry run and the read of the live object.
const diffAttempts = 5

// pairs runs a server-side dry run of the apply and pairs each result
// with the live object it was made from: an unchanged object is its own
// pair; a configured one is read, and the whole is read again if the
// live object's resourceVersion is not the one the dry run merged into
// (someone, a controller writing a status, wrote in between), so that a
// change made meanwhile does not show as one the apply would make.
func (o *diffOptions) pairs(ctx context.Context, objs []*corralpb.Object) ([]diffPair, error) {
	for attempt := 1; ; attempt++ {
		var results []*corralpb.ApplyResult
		err := o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
			resp, err := c.Apply(ctx, &corralpb.ApplyRequest{Objects: objs, DryRun: true})
			if err != nil {
				return fmt.Errorf("apply %d objects (server dry run): %w", len(objs), err)
			}
			results = resp.GetResults()
			return nil
		})
		if err != nil {
			return nil, err
		}
		out, moved := make([]diffPair, 0, len(results)), false
		for i, r := range results {
			obj := r.GetObject()
			if obj == nil && i < len(objs) {
				obj = objs[i]
			}
			if r.GetAction() == "unchanged" {
				out = append(out, diffPair{live: obj, merged: obj})
				continue
			}
			md := api.Meta(obj)
			cur, err := o.g.getObject(ctx, api.KindOf(obj), md.GetNamespace(), md.GetName())
			switch {
			case isCode(err, codes.NotFound):
				cur = nil
			case err != nil:
				return nil, err
			}
			if (r.GetAction() == "created") != (cur == nil) ||
				(cur != nil && api.Meta(cur).GetResourceVersion() != md.GetResourceVersion()) {
				moved = true
				break
			}
			out = append(out, diffPair{live: cur, merged: obj})
		}
		if !moved {
			return out, nil
		}
		if attempt == diffAttempts {
			return nil, fmt.Errorf("the objects kept changing while they were read, %d times", diffAttempts)
		}
	}
}

// diffFileName names an object's file as kubectl diff does:
// GROUP.VERSION.KIND.NAMESPACE.NAME ("apps.v1.DaemonSet.default.nginx",
// "v1.Node..node1").
func diffFileName(o *corralpb.Object) string {
	k, _ := api.KindByName(api.KindOf(o))
	md := api.Meta(o)
	gv := strings.ReplaceAll(k.APIVersion(), "/", ".")
	return strings.Join([]string{gv, k.Kind, md.GetNamespace(), md.GetName()}, ".")
}

// writeDiffFile writes an object as YAML.
func writeDiffFile(path string, o *corralpb.Object) error {
	data, err := api.MarshalYAML(o)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// runDiff runs KUBECTL_EXTERNAL_DIFF, or diff -u -N, on the two
// directories, with the CLI's output streams.
func (o *diffOptions) runDiff(ctx context.Context, live, merged string) (int, error) {
	argv := []string{"diff", "-u", "-N"}
	if ext := strings.Fields(o.g.getenv("KUBECTL_EXTERNAL_DIFF")); len(ext) > 0 {
		argv = ext
	}
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], live, merged)...)
	cmd.Stdout, cmd.Stderr = o.g.out, o.g.errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 1:
		return 1, nil // differences
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), fmt.Errorf("%s: exit status %d", strings.Join(argv, " "), exitErr.ExitCode())
	}
	return 0, fmt.Errorf("run %s: %w", argv[0], err)
}
