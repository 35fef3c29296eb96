package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	corralpb "github.com/corral-dev/corral/proto"
)

// newSnapshotCommand returns `corral snapshot` with `save`; `restore` is an
// offline server operation that main adds (see NewRootCommand).
func newSnapshotCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save the cluster state to a file",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "save FILE",
		Short:   "Stream a snapshot of the replicated state into FILE",
		Example: "  corral snapshot save /backup/corral-$(date +%F).snap",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("exactly one FILE is required")
			}
			n, err := g.saveSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			g.printf("Snapshot saved to %s (%d bytes)\n", args[0], n)
			return nil
		}),
	})
	return cmd
}

// saveSnapshot streams the Snapshot RPC into a temporary file beside path
// and renames it into place once complete and synced, so path never holds
// a partial snapshot. It returns the size written.
func (g *globals) saveSnapshot(ctx context.Context, path string) (int64, error) {
	c, err := g.cluster()
	if err != nil {
		return 0, err
	}
	stream, err := c.Snapshot(ctx, &corralpb.SnapshotRequest{})
	if err != nil {
		return 0, fmt.Errorf("start snapshot: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, fmt.Errorf("create snapshot file: %w", err)
	}
	n, err := copySnapshot(f, stream)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close snapshot file: %w", cerr)
	}
	if err == nil {
		if rerr := os.Rename(f.Name(), path); rerr != nil {
			err = fmt.Errorf("rename snapshot into place: %w", rerr)
		}
	}
	if err != nil {
		if rmErr := os.Remove(f.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return 0, fmt.Errorf("%w (and removing the partial file: %v)", err, rmErr)
		}
		return 0, err
	}
	return n, nil
}

// copySnapshot writes every chunk of the stream to w.
func copySnapshot(w io.Writer, stream corralpb.Cluster_SnapshotClient) (int64, error) {
	var n int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("receive snapshot: %w", err)
		}
		m, err := w.Write(chunk.GetData())
		n += int64(m)
		if err != nil {
			return n, fmt.Errorf("write snapshot: %w", err)
		}
	}
}
