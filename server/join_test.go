package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

// A server joins a running cluster with `corral token show --role server`:
// it checks the cluster's CA against the token, gets a server certificate,
// becomes a voter and learns the CA key through Raft. The agent token or
// another cluster's token does not let it in (a rotated-away token is
// refused by Certify: see testCertifyRotatedToken).
func TestServerJoinsWithTheServerToken(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	admin := c.Client(t, 0)
	tok, err := admin.Token(ctx(t), &corralpb.TokenRequest{Role: "server"})
	if err != nil {
		t.Fatal(err)
	}
	agentTok, err := admin.Token(ctx(t), &corralpb.TokenRequest{Role: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	other := framework.NewInProcess(t, 1)
	otherTok, err := other.Client(t, 0).Token(ctx(t), &corralpb.TokenRequest{Role: "server"})
	if err != nil {
		t.Fatal(err)
	}
	joiner := func(name, token string) server.Config {
		return server.Config{
			Name: name, DataDir: filepath.Join(t.TempDir(), name),
			APIAddr: fmt.Sprintf("127.0.0.1:%d", framework.FreePort(t)), RaftAddr: fmt.Sprintf("127.0.0.1:%d", framework.FreePort(t)),
			Join: []string{c.APIAddr(0)}, Token: token,
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		}
	}
	if _, err := server.Start(joiner("bad", agentTok.GetToken())); err == nil || !strings.Contains(err.Error(), "agent token") {
		t.Fatalf("start with the agent token: %v, want it refused", err)
	}
	// Another cluster's token: the TLS connection refuses this cluster's CA,
	// so the server never gets a certificate nor becomes a member.
	stranger, err := server.Start(joiner("stranger", otherTok.GetToken()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stranger.Stop() })

	cfg := joiner("s2", tok.GetToken())
	s2, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	framework.WaitFor(t, "s2 to become a member", 20*time.Second, func() bool {
		resp, err := admin.Members(ctx(t), &corralpb.MembersRequest{})
		if err != nil {
			return false
		}
		for _, m := range resp.GetMembers() {
			if m.GetName() == "s2" && m.GetVoter() {
				return true
			}
		}
		return false
	})
	ca := framework.ClusterCA(t, cfg.DataDir) // the key arrived by Raft, written 0600
	if ca.Digest() != c.CA(t).Digest() {
		t.Fatal("s2 holds another CA than the cluster's")
	}
	resp, err := admin.Members(ctx(t), &corralpb.MembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.GetMembers() {
		if m.GetName() == "stranger" {
			t.Fatal("a server with another cluster's token became a member")
		}
	}
}
