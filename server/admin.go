package server

import (
	"context"
	"runtime"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/version"
)

// Members lists the Raft servers with their state.
func (s *clusterService) Members(ctx context.Context, _ *corralpb.MembersRequest) (*corralpb.MembersResponse, error) {
	ms, err := s.rs.Members(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &corralpb.MembersResponse{Members: ms}, nil
}

// RemoveServer removes a server from the Raft configuration.
func (s *clusterService) RemoveServer(ctx context.Context, req *corralpb.RemoveServerRequest) (*corralpb.RemoveServerResponse, error) {
	if err := s.rs.RemoveServer(ctx, req.GetName()); err != nil {
		return nil, toStatus(err)
	}
	return &corralpb.RemoveServerResponse{}, nil
}

// Snapshot streams a consistent point-in-time backup.
func (s *clusterService) Snapshot(_ *corralpb.SnapshotRequest, stream corralpb.Cluster_SnapshotServer) error {
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&corralpb.SnapshotChunk{Data: b}) }}
	if err := s.rs.SaveSnapshot(stream.Context(), w); err != nil {
		return toStatus(err)
	}
	return w.flush()
}

// chunkWriter sends what is written in chunks of up to 64 KiB.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
}

const chunkSize = 64 << 10

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(chunkSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == chunkSize {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}

// Version reports the server's build.
func (s *clusterService) Version(context.Context, *corralpb.VersionRequest) (*corralpb.VersionResponse, error) {
	return &corralpb.VersionResponse{
		Version:   version.Version,
		GitCommit: version.GitCommit(),
		GoVersion: runtime.Version(),
		Platform:  version.Platform(),
	}, nil
}
