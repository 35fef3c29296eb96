package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// pendingRestoreFile is where RestoreSnapshot leaves a backup for the first
// leader of the new cluster to load.
const pendingRestoreFile = "restore.snap"

// SaveSnapshot writes a consistent point-in-time backup of the whole state
// to w: every write acknowledged before the call is in it.
func (s *Server) SaveSnapshot(ctx context.Context, w io.Writer) error {
	st, err := s.ConsistentRead(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := st.Snapshot().Persist(w); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// RestoreSnapshot prepares dataDir to start a new cluster from the backup in
// file (etcdctl snapshot restore is the model). It checks the backup, and
// refuses a data directory that already holds Raft state. The first server
// started on dataDir loads the backup once it leads its new cluster, and
// then replicates it to the servers that join.
func RestoreSnapshot(file, dataDir string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if _, err := state.Restore(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("snapshot %s is not a corral snapshot: %w", file, err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db")); err == nil {
		return fmt.Errorf("data dir %s already holds a cluster's state; restore into an empty directory", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	tmp := filepath.Join(dataDir, pendingRestoreFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write snapshot into data dir: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dataDir, pendingRestoreFile)); err != nil {
		return fmt.Errorf("write snapshot into data dir: %w", err)
	}
	return nil
}

// restorePending loads a backup left by RestoreSnapshot into the cluster
// through Raft's user restore, then re-records the current members (the
// backup's member table describes the old cluster).
func (s *Server) restorePending(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, pendingRestoreFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pending restore: %w", err)
	}
	backup, err := state.Restore(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("pending restore %s: %w", path, err)
	}
	current, err := s.State().Members(nil)
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	// The new cluster keeps its own CA, tokens and identities: the
	// snapshot's belong to the cluster it was taken from, whose nodes
	// join this one with this one's tokens.
	cc, err := s.State().ClusterConfig(nil)
	if err != nil {
		return fmt.Errorf("read cluster config: %w", err)
	}
	ids, err := s.State().Identities()
	if err != nil {
		return err
	}
	oldIDs, err := backup.Identities()
	if err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: backup.LatestIndex(), Size: int64(len(data))}
	if err := s.raft.Restore(meta, bytes.NewReader(data), s.cfg.ApplyTimeout); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	fix := &corralpb.LogEntry{PutMembers: current, ClusterConfig: cc}
	for _, id := range oldIDs {
		fix.DeleteIdentities = append(fix.DeleteIdentities, id.GetName())
	}
	for _, id := range ids {
		fix.PutIdentities = append(fix.PutIdentities, &corralpb.Identity{Name: id.GetName(), PublicKeySha256: id.GetPublicKeySha256()})
	}
	old, _ := backup.Members(nil)
	for _, m := range old {
		if !s.inRaftConfig(m.GetName()) {
			fix.DeleteMembers = append(fix.DeleteMembers, m.GetName())
		}
	}
	if _, err := s.applyEntry(ctx, fix); err != nil {
		return fmt.Errorf("record members after restore: %w", err)
	}
	if err := os.Rename(path, path+".done"); err != nil {
		return fmt.Errorf("mark restore done: %w", err)
	}
	s.log.Info("restored snapshot", "raft_index", backup.LatestIndex(), "bytes", len(data))
	return nil
}
