package cli

import (
	"strings"
	"testing"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestTokenShowAndRotate(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	show := h.mustRun("token", "show")
	tok, err := pki.ParseToken(strings.TrimSuffix(show, "\n"))
	if err != nil || !strings.HasSuffix(show, "\n") || strings.Count(show, "\n") != 1 {
		t.Fatalf("token show printed %q: %v", show, err)
	}
	if tok.Role != pki.TokenAgent || tok.CAHash != h.ca.Digest() {
		t.Fatalf("token show: %+v", tok)
	}
	if again := h.mustRun("token", "show", "--role", "agent"); again != show {
		t.Fatalf("a second show printed %q, want %q", again, show)
	}
	server := h.mustRun("token", "show", "--role", "server")
	if !strings.HasPrefix(server, "CRL1::server::") {
		t.Fatalf("token show --role server: %q", server)
	}
	rotated := h.mustRun("token", "rotate")
	if rotated == show || !strings.HasPrefix(rotated, "CRL1::agent::") {
		t.Fatalf("token rotate printed %q (old %q)", rotated, show)
	}
	if now := h.mustRun("token", "show"); now != rotated {
		t.Fatalf("show after rotate printed %q, want the rotated %q", now, rotated)
	}
	h.mustRun("token", "rotate", "--role=server")

	want := []*corralpb.TokenRequest{
		{Role: "agent"}, {Role: "agent"}, {Role: "server"}, {Role: "agent", Rotate: true}, {Role: "agent"}, {Role: "server", Rotate: true},
	}
	fake.mu.Lock()
	got := fake.tokens
	fake.mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("%d Token calls, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].GetRole() != want[i].GetRole() || got[i].GetRotate() != want[i].GetRotate() {
			t.Errorf("call %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestTokenRejectsBadRoleLocally(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	for _, args := range [][]string{{"token", "show", "--role", "node"}, {"token", "rotate", "--role", "admin"}} {
		_, errOut, code := h.run(args...)
		if code != 1 || !strings.HasPrefix(errOut, `error: invalid --role "`) || !strings.Contains(errOut, "must be agent or server") {
			t.Errorf("%v: exit %d %q", args, code, errOut)
		}
	}
	if _, errOut, code := h.run("token", "show", "extra"); code != 1 || errOut != "error: unexpected arguments: extra\n" {
		t.Errorf("extra argument: exit %d %q", code, errOut)
	}
	if len(fake.tokens) != 0 {
		t.Fatalf("%d Token calls reached the server", len(fake.tokens))
	}
}

func TestTokenRotateHelpSaysWhatHappens(t *testing.T) {
	h := newHarness(t, newFakeCluster())
	out := h.mustRun("token", "--help")
	if !strings.Contains(out, "rotate      Replace a join token: the old token stops working, issued certificates stay valid") {
		t.Fatalf("token --help:\n%s", out)
	}
}

func TestForbiddenPrintsLikeKubectl(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	view := pki.Identity{Role: pki.RoleView, Name: "viewer"}
	h.writeConfig(h.config, h.userConfig(view, h.addr))
	_, errOut, code := h.run("token", "rotate")
	if code != 1 || errOut != "Error from server (Forbidden): viewer (view) may not read join tokens: only admins may\n" {
		t.Fatalf("token rotate as a viewer: exit %d %q", code, errOut)
	}
}
