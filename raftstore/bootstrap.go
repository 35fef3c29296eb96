package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// startCluster decides, from the data directory and the flags, how this
// server becomes part of a cluster:
//
//	existing Raft state        → nothing to do: Raft restarts from disk
//	expect 1, no join          → bootstrap a single-server cluster now
//	expect N>1                 → discover peers; bootstrap when N are seen,
//	                              or join if a peer already has a cluster
//	expect 0, join             → ask the cluster to add this server
func (s *Server) startCluster() error {
	existing, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		return fmt.Errorf("check raft state: %w", err)
	}
	if existing {
		s.log.Info("restarting from existing raft state", "node", s.cfg.Name)
		s.background(s.ensureMember)
		return nil
	}
	if s.cfg.BootstrapExpect == 1 && len(s.knownAddrs) == 0 {
		s.rememberSelf()
		f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.Name), Address: raft.ServerAddress(s.cfg.RaftAddr),
		}}})
		if err := f.Error(); err != nil {
			return fmt.Errorf("bootstrap single-server cluster: %w", err)
		}
		s.log.Info("bootstrapped single-server cluster", "node", s.cfg.Name)
		return nil
	}
	s.background(s.discoverAndJoin)
	return nil
}

func (s *Server) background(fn func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

func (s *Server) rememberSelf() {
	s.discMu.Lock()
	s.discovered[s.cfg.Name] = memberInfo{name: s.cfg.Name, raftAddr: s.cfg.RaftAddr, apiAddr: s.cfg.APIAddr}
	s.discMu.Unlock()
}

// hasClusterConfig reports whether Raft knows of any server: once it does,
// this server is part of a cluster and discovery stops.
func (s *Server) hasClusterConfig() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return len(f.Configuration().Servers) > 0
}

// discoverAndJoin asks every known peer about itself until this server is in
// a cluster. When a peer reports a cluster already exists, it asks to be
// added; when bootstrap-expect servers without state are seen, every one of
// them bootstraps the same configuration (sorted by name), which Raft makes
// safe: identical bootstrap configurations never split the cluster.
func (s *Server) discoverAndJoin(ctx context.Context) {
	s.rememberSelf()
	t := time.NewTicker(s.cfg.DiscoveryInterval)
	defer t.Stop()
	for {
		if s.hasClusterConfig() {
			s.ensureMember(ctx)
			return
		}
		done, err := s.discoveryRound(ctx)
		if err != nil {
			s.log.Warn("cluster discovery", "err", err)
		}
		if done {
			s.ensureMember(ctx)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) discoveryRound(ctx context.Context) (bool, error) {
	infos := s.probePeers(ctx)
	for _, in := range infos {
		if in.GetBootstrapped() {
			if err := s.joinCA(ctx, in); err != nil {
				return false, err
			}
			if err := s.joinVia(ctx, in.GetApiAddr()); err != nil {
				return false, fmt.Errorf("join through %s (%s): %w", in.GetName(), in.GetApiAddr(), err)
			}
			s.log.Info("joined existing cluster", "node", s.cfg.Name, "via", in.GetName())
			return true, nil
		}
	}
	if s.cfg.BootstrapExpect <= 1 {
		return false, nil
	}
	s.discMu.Lock()
	servers := make([]memberInfo, 0, len(s.discovered))
	for _, m := range s.discovered {
		servers = append(servers, m)
	}
	s.discMu.Unlock()
	if len(servers) < s.cfg.BootstrapExpect {
		return false, nil
	}
	if len(servers) > s.cfg.BootstrapExpect {
		return false, fmt.Errorf("found %d servers but bootstrap-expect is %d; refusing to bootstrap", len(servers), s.cfg.BootstrapExpect)
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].name < servers[j].name })
	if lowest := servers[0]; lowest.name != s.cfg.Name {
		if err := s.adoptBootstrapCA(ctx, lowest); err != nil {
			return false, err
		}
	}
	conf := raft.Configuration{}
	for _, m := range servers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(m.name), Address: raft.ServerAddress(m.raftAddr),
		})
	}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && err != raft.ErrCantBootstrap {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	s.log.Info("bootstrapped cluster", "node", s.cfg.Name, "servers", len(servers))
	return true, nil
}

// joinCA makes sure this server holds a certificate from the CA of the
// cluster that peer belongs to before it joins. A server bootstrapping
// with a shared token takes the CA from the peer (whose Raft may already
// be waiting for this server's vote, unable to elect a leader, and so
// unable to answer Certify); any other gets a certificate with its token.
func (s *Server) joinCA(ctx context.Context, peer *corralpb.InfoResponse) error {
	if s.cfg.BootstrapExpect > 1 && s.token.CAHash == "" {
		err := s.adoptBootstrapCA(ctx, memberInfo{name: peer.GetName(), apiAddr: peer.GetApiAddr()})
		if err == nil {
			return nil
		}
		s.log.Debug("bootstrap CA from a member", "peer", peer.GetName(), "err", err)
	}
	return s.certify(ctx, peer.GetApiAddr())
}

// probePeers calls Info on every known address, learning new addresses
// (discovery is transitive) and the servers that answer.
func (s *Server) probePeers(ctx context.Context) []*corralpb.InfoResponse {
	s.discMu.Lock()
	addrs := make([]string, 0, len(s.knownAddrs))
	for a := range s.knownAddrs {
		addrs = append(addrs, a)
	}
	s.discMu.Unlock()
	sort.Strings(addrs)
	var out []*corralpb.InfoResponse
	for _, a := range addrs {
		in, err := s.open.info(ctx, a)
		if err != nil {
			s.log.Debug("peer not answering", "addr", a, "err", err)
			continue
		}
		out = append(out, in)
		s.discMu.Lock()
		if in.GetBootstrapExpect() > 1 || in.GetBootstrapped() || s.cfg.BootstrapExpect > 1 {
			if prev, ok := s.discovered[in.GetName()]; ok && prev.raftAddr != in.GetRaftAddr() {
				s.log.Warn("two servers claim one name", "name", in.GetName(), "raft_addr", in.GetRaftAddr(), "other", prev.raftAddr)
			}
			s.discovered[in.GetName()] = memberInfo{name: in.GetName(), raftAddr: in.GetRaftAddr(), apiAddr: in.GetApiAddr()}
		}
		for _, p := range in.GetPeers() {
			if p != s.cfg.APIAddr && p != "" {
				s.knownAddrs[p] = true
			}
		}
		s.discMu.Unlock()
	}
	return out
}

// joinVia asks the server at addr (which forwards to its leader) to add this
// server as a voter and record its addresses.
func (s *Server) joinVia(ctx context.Context, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return s.peers.join(cctx, addr, &corralpb.Member{Name: s.cfg.Name, RaftAddr: s.cfg.RaftAddr, ApiAddr: s.cfg.APIAddr})
}

// ensureMember makes sure the replicated member table holds this server's
// current addresses (a restarted server may have moved), retrying until it
// does or the server stops.
func (s *Server) ensureMember(ctx context.Context) {
	t := time.NewTicker(s.cfg.DiscoveryInterval)
	defer t.Stop()
	for {
		m := s.memberByName(s.cfg.Name)
		if m.raftAddr == s.cfg.RaftAddr && m.apiAddr == s.cfg.APIAddr {
			return
		}
		if _, leaderAddr := s.Leader(); leaderAddr != "" {
			if err := s.joinVia(ctx, leaderAddr); err != nil {
				s.log.Debug("record member", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// memberByName looks a server up in the replicated member table, then in
// what discovery learned.
func (s *Server) memberByName(name string) memberInfo {
	if ms, err := s.State().Members(nil); err == nil {
		for _, m := range ms {
			if m.GetName() == name {
				return memberInfo{name: name, raftAddr: m.GetRaftAddr(), apiAddr: m.GetApiAddr()}
			}
		}
	}
	s.discMu.Lock()
	defer s.discMu.Unlock()
	return s.discovered[name]
}

// leaderSetup runs once per leadership term after the barrier: it writes the
// cluster configuration on the very first leadership of a new cluster, and
// records every member that discovery learned of.
func (s *Server) leaderSetup(ctx context.Context) error {
	st := s.State()
	cc, err := st.ClusterConfig(nil)
	if err != nil {
		return fmt.Errorf("read cluster config: %w", err)
	}
	entry := &corralpb.LogEntry{}
	if cc != nil {
		// Clusters made before pod networking stored none: theirs is the default.
		stored := cc.GetClusterCidr()
		if stored == "" {
			stored = DefaultClusterCIDR
		}
		if stored != s.cfg.ClusterCIDR {
			s.log.Warn("the cluster CIDR was fixed when the cluster bootstrapped; --cluster-cidr is ignored",
				"cluster_cidr", stored, "flag", s.cfg.ClusterCIDR)
		}
	}
	if cc == nil {
		ca, err := s.CA()
		if err != nil {
			return fmt.Errorf("bootstrap the cluster config: %w", err)
		}
		serverSecret := pki.NewSecret()
		if s.token.Secret != "" && s.token.CAHash == "" {
			serverSecret = s.token.Secret // the shared bootstrap token
		}
		entry.ClusterConfig = &corralpb.ClusterConfig{
			ClusterId:    randomHex(16),
			CreatedUnix:  time.Now().Unix(),
			ClusterCidr:  s.cfg.ClusterCIDR,
			CaCertPem:    ca.CertPEM,
			CaKeyPem:     ca.KeyPEM,
			ServerSecret: serverSecret,
			AgentSecret:  pki.NewSecret(),
		}
		// This server's own name is bound to its key from the start.
		if leaf := s.creds.Leaf(); leaf != nil {
			if h, err := pki.KeyDigest(leaf.PublicKey); err == nil {
				entry.PutIdentities = append(entry.PutIdentities, &corralpb.Identity{Name: "server:" + s.cfg.Name, PublicKeySha256: h})
			}
		}
	}
	known := map[string]*corralpb.Member{}
	if ms, err := st.Members(nil); err == nil {
		for _, m := range ms {
			known[m.GetName()] = m
			if !s.inRaftConfig(m.GetName()) {
				entry.DeleteMembers = append(entry.DeleteMembers, m.GetName())
			}
		}
	}
	s.discMu.Lock()
	s.discovered[s.cfg.Name] = memberInfo{name: s.cfg.Name, raftAddr: s.cfg.RaftAddr, apiAddr: s.cfg.APIAddr}
	for _, m := range s.discovered {
		k := known[m.name]
		if k == nil || k.GetRaftAddr() != m.raftAddr || k.GetApiAddr() != m.apiAddr {
			if m.name != s.cfg.Name && !s.inRaftConfig(m.name) {
				continue
			}
			entry.PutMembers = append(entry.PutMembers, &corralpb.Member{Name: m.name, RaftAddr: m.raftAddr, ApiAddr: m.apiAddr})
		}
	}
	s.discMu.Unlock()
	sort.Slice(entry.PutMembers, func(i, j int) bool { return entry.PutMembers[i].Name < entry.PutMembers[j].Name })
	if entry.ClusterConfig == nil && len(entry.PutMembers) == 0 && len(entry.DeleteMembers) == 0 && len(entry.PutIdentities) == 0 {
		return s.restorePending(ctx)
	}
	if _, err := s.applyEntry(ctx, entry); err != nil {
		return fmt.Errorf("write cluster config and members: %w", err)
	}
	return s.restorePending(ctx)
}

func (s *Server) inRaftConfig(name string) bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == name {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
