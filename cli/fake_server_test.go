package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// fakeCluster is a small in-memory Cluster service for the CLI's tests: a
// map of objects with resource versions, enough of List's selectors, and
// hooks to inject conflicts. The real servers are tested elsewhere.
type fakeCluster struct {
	corralpb.UnimplementedClusterServer

	mu      sync.Mutex
	objs    map[string]*corralpb.Object
	rv      int64
	auth    []string // the client identities seen
	applies []*corralpb.ApplyRequest
	deletes []*corralpb.DeleteRequest
	updates int
	// conflicts makes that many Updates fail with Aborted after another
	// writer changed the object (a label "race" is bumped).
	conflicts int
	watch     chan *corralpb.WatchEvent // an event of type "LOST" ends the call with Unavailable
	watchRVs  []string                  // the resourceVersion of each Watch call
	snapshot  []byte
	// logs and exec serve the streaming calls when set (see logs_test.go
	// and exec_test.go).
	logs func(*corralpb.LogsRequest, grpc.ServerStreamingServer[corralpb.LogsChunk]) error
	exec func(grpc.BidiStreamingServer[corralpb.ExecInput, corralpb.ExecOutput]) error
	// list, when set, runs before each List is served; an error it
	// returns is List's answer (see wait_test.go). Set it with setList:
	// a call the client gave up on may still be reading it.
	list func(context.Context, *corralpb.ListRequest) error

	// ca signs CreateUser's requests (newHarness sets it).
	ca *pki.CA
	// secrets are the join token secrets by role; Token rotates them.
	secrets map[string]string
	tokens  []*corralpb.TokenRequest
	users   []*corralpb.CreateUserRequest
	signed  [][]byte // the certificates CreateUser issued
	// userServers are the servers CreateUser names.
	userServers []string
}

var _ corralpb.ClusterServer = (*fakeCluster)(nil)

// newFakeCluster returns an empty fake.
func newFakeCluster() *fakeCluster {
	return &fakeCluster{objs: map[string]*corralpb.Object{}, watch: make(chan *corralpb.WatchEvent, 16)}
}

// setList sets the list hook.
func (f *fakeCluster) setList(hook func(context.Context, *corralpb.ListRequest) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = hook
}

// fakeKey is the map key of an object.
func fakeKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// put stores an object as the server would, stamping a resource version.
func (f *fakeCluster) put(o *corralpb.Object) *corralpb.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(o)
}

func (f *fakeCluster) putLocked(o *corralpb.Object) *corralpb.Object {
	f.rv++
	c := proto.Clone(o).(*corralpb.Object)
	md := api.Meta(c)
	md.ResourceVersion = strconv.FormatInt(f.rv, 10)
	if md.GetUid() == "" {
		md.Uid = "uid-" + md.GetName()
	}
	f.objs[fakeKey(api.KindOf(c), md.GetNamespace(), md.GetName())] = c
	return proto.Clone(c).(*corralpb.Object)
}

// object returns a stored object.
func (f *fakeCluster) object(kind, ns, name string) *corralpb.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[fakeKey(kind, ns, name)]
	if o == nil {
		return nil
	}
	return proto.Clone(o).(*corralpb.Object)
}

// noteAuth records the verified client identity of a call.
func (f *fakeCluster) noteAuth(ctx context.Context) {
	id, _, err := pki.FromContext(ctx)
	if err != nil {
		f.auth = append(f.auth, err.Error())
		return
	}
	f.auth = append(f.auth, id.String())
}

func notFound(kind, name string) error {
	k, _ := api.KindByName(kind)
	return status.Errorf(codes.NotFound, "%s %q not found", k.GroupResource(), name)
}

// requireAdmin refuses a caller whose certificate is not an admin's, as
// the servers do.
func requireAdmin(ctx context.Context, what string) error {
	id, _, err := pki.FromContext(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if id.Role != pki.RoleAdmin {
		return status.Errorf(codes.PermissionDenied, "%s may not %s: only admins may", id, what)
	}
	return nil
}

func (f *fakeCluster) Token(ctx context.Context, req *corralpb.TokenRequest) (*corralpb.TokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, req)
	if err := requireAdmin(ctx, "read join tokens"); err != nil {
		return nil, err
	}
	if f.secrets == nil {
		f.secrets = map[string]string{}
	}
	if req.GetRotate() || f.secrets[req.GetRole()] == "" {
		f.secrets[req.GetRole()] = pki.NewSecret()
	}
	t := pki.Token{Role: req.GetRole(), CAHash: f.ca.Digest(), Secret: f.secrets[req.GetRole()]}
	return &corralpb.TokenResponse{Token: t.String()}, nil
}

func (f *fakeCluster) CreateUser(ctx context.Context, req *corralpb.CreateUserRequest) (*corralpb.CreateUserResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, req)
	if err := requireAdmin(ctx, "create users"); err != nil {
		return nil, err
	}
	role, err := pki.ParseRole(req.GetRole())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cert, err := f.ca.SignCSR(req.GetCsr(), pki.Identity{Role: role, Name: req.GetName()}, time.Now(), time.Hour)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.signed = append(f.signed, cert)
	return &corralpb.CreateUserResponse{CertPem: cert, CaPem: f.ca.CertPEM, Servers: f.userServers}, nil
}

// sameContent compares objects ignoring server-owned metadata.
func sameContent(a, b *corralpb.Object) bool {
	a, b = proto.Clone(a).(*corralpb.Object), proto.Clone(b).(*corralpb.Object)
	for _, o := range []*corralpb.Object{a, b} {
		md := api.Meta(o)
		md.ResourceVersion, md.Uid, md.CreationTimestamp = "", "", nil
	}
	return proto.Equal(a, b)
}

func (f *fakeCluster) Apply(ctx context.Context, req *corralpb.ApplyRequest) (*corralpb.ApplyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	f.applies = append(f.applies, req)
	resp := &corralpb.ApplyResponse{}
	for _, o := range req.GetObjects() {
		md := api.Meta(o)
		old := f.objs[fakeKey(api.KindOf(o), md.GetNamespace(), md.GetName())]
		action := "created"
		switch {
		case old != nil && sameContent(old, o):
			action = "unchanged"
		case old != nil:
			action = "configured"
		}
		stored := o
		if !req.GetDryRun() && action != "unchanged" {
			stored = f.putLocked(o)
		}
		resp.Results = append(resp.Results, &corralpb.ApplyResult{Object: stored, Action: action})
	}
	return resp, nil
}

func (f *fakeCluster) Create(ctx context.Context, req *corralpb.CreateRequest) (*corralpb.ObjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	md := api.Meta(req.GetObject())
	if f.objs[fakeKey(api.KindOf(req.GetObject()), md.GetNamespace(), md.GetName())] != nil {
		k, _ := api.KindByName(api.KindOf(req.GetObject()))
		return nil, status.Errorf(codes.AlreadyExists, "%s %q already exists", k.GroupResource(), md.GetName())
	}
	if req.GetDryRun() {
		return &corralpb.ObjectResponse{Object: req.GetObject()}, nil
	}
	return &corralpb.ObjectResponse{Object: f.putLocked(req.GetObject())}, nil
}

func (f *fakeCluster) Update(ctx context.Context, req *corralpb.UpdateRequest) (*corralpb.ObjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	o := req.GetObject()
	md := api.Meta(o)
	key := fakeKey(api.KindOf(o), md.GetNamespace(), md.GetName())
	old := f.objs[key]
	if old == nil {
		return nil, notFound(api.KindOf(o), md.GetName())
	}
	if f.conflicts > 0 {
		f.conflicts--
		om := api.Meta(old)
		if om.Labels == nil {
			om.Labels = map[string]string{}
		}
		om.Labels["race"] = strconv.Itoa(f.conflicts)
		f.putLocked(old)
	}
	if rv := md.GetResourceVersion(); rv != "" && rv != api.Meta(f.objs[key]).GetResourceVersion() {
		return nil, status.Errorf(codes.Aborted, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", api.KindOf(o), md.GetName())
	}
	f.updates++
	if req.GetDryRun() {
		return &corralpb.ObjectResponse{Object: o}, nil
	}
	return &corralpb.ObjectResponse{Object: f.putLocked(o)}, nil
}

func (f *fakeCluster) Delete(ctx context.Context, req *corralpb.DeleteRequest) (*corralpb.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	key := fakeKey(req.GetKind(), req.GetNamespace(), req.GetName())
	old := f.objs[key]
	if old == nil {
		return nil, notFound(req.GetKind(), req.GetName())
	}
	f.deletes = append(f.deletes, req)
	if !req.GetDryRun() {
		delete(f.objs, key)
	}
	return &corralpb.DeleteResponse{Object: old}, nil
}

func (f *fakeCluster) Get(ctx context.Context, req *corralpb.GetRequest) (*corralpb.ObjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	o := f.objs[fakeKey(req.GetKind(), req.GetNamespace(), req.GetName())]
	if o == nil {
		return nil, notFound(req.GetKind(), req.GetName())
	}
	return &corralpb.ObjectResponse{Object: proto.Clone(o).(*corralpb.Object)}, nil
}

func (f *fakeCluster) List(ctx context.Context, req *corralpb.ListRequest) (*corralpb.ListResponse, error) {
	f.mu.Lock()
	hook := f.list
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, req); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noteAuth(ctx)
	sel := labels.Everything()
	if req.GetLabelSelector() != "" {
		s, err := api.ParseSelector(req.GetLabelSelector())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		sel = s
	}
	keys := sortedKeys(f.objs)
	resp := &corralpb.ListResponse{ResourceVersion: strconv.FormatInt(f.rv, 10)}
	for _, k := range keys {
		o := f.objs[k]
		md := api.Meta(o)
		if api.KindOf(o) != req.GetKind() || (req.GetNamespace() != "" && md.GetNamespace() != req.GetNamespace()) {
			continue
		}
		if !sel.Matches(labels.Set(md.GetLabels())) || !matchFields(o, req.GetFieldSelector()) {
			continue
		}
		resp.Items = append(resp.Items, proto.Clone(o).(*corralpb.Object))
	}
	return resp, nil
}

// matchFields evaluates "a.b=x,c!=y" over the object's JSON.
func matchFields(o *corralpb.Object, sel string) bool {
	if sel == "" {
		return true
	}
	m, err := api.ToMap(o)
	if err != nil {
		return false
	}
	for _, term := range strings.Split(sel, ",") {
		neg := strings.Contains(term, "!=")
		path, want, _ := strings.Cut(strings.Replace(term, "!=", "=", 1), "=")
		vals, err := evalPath(m, path)
		if err != nil {
			return false
		}
		got := ""
		if len(vals) > 0 {
			got = formatValue(vals[0])
		}
		if (got == want) == neg {
			return false
		}
	}
	return true
}

func (f *fakeCluster) Watch(req *corralpb.WatchRequest, st grpc.ServerStreamingServer[corralpb.WatchEvent]) error {
	f.mu.Lock()
	f.watchRVs = append(f.watchRVs, req.GetResourceVersion())
	f.mu.Unlock()
	for {
		select {
		case ev, ok := <-f.watch:
			if !ok {
				return nil
			}
			if ev.GetType() == "LOST" {
				return status.Error(codes.Unavailable, "server shutting down")
			}
			if err := st.Send(ev); err != nil {
				return err
			}
		case <-st.Context().Done():
			return nil
		}
	}
}

func (f *fakeCluster) Members(context.Context, *corralpb.MembersRequest) (*corralpb.MembersResponse, error) {
	return &corralpb.MembersResponse{Members: []*corralpb.ServerMember{
		{Name: "server1", RaftAddr: "10.0.0.1:7000", ApiAddr: "10.0.0.1:7443", RaftState: "Leader", Voter: true, LastIndex: 42},
		{Name: "server2", RaftAddr: "10.0.0.2:7000", ApiAddr: "10.0.0.2:7443", RaftState: "Follower", Voter: true, LastIndex: 41},
	}}, nil
}

func (f *fakeCluster) Snapshot(_ *corralpb.SnapshotRequest, st grpc.ServerStreamingServer[corralpb.SnapshotChunk]) error {
	for i := 0; i < len(f.snapshot); i += 4 {
		end := min(i+4, len(f.snapshot))
		if err := st.Send(&corralpb.SnapshotChunk{Data: f.snapshot[i:end]}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeCluster) Logs(req *corralpb.LogsRequest, st grpc.ServerStreamingServer[corralpb.LogsChunk]) error {
	f.mu.Lock()
	f.noteAuth(st.Context())
	f.mu.Unlock()
	if f.logs == nil {
		return status.Error(codes.Unimplemented, "logs")
	}
	return f.logs(req, st)
}

func (f *fakeCluster) Exec(st grpc.BidiStreamingServer[corralpb.ExecInput, corralpb.ExecOutput]) error {
	f.mu.Lock()
	f.noteAuth(st.Context())
	f.mu.Unlock()
	if f.exec == nil {
		return status.Error(codes.Unimplemented, "exec")
	}
	return f.exec(st)
}

func (f *fakeCluster) Version(context.Context, *corralpb.VersionRequest) (*corralpb.VersionResponse, error) {
	return &corralpb.VersionResponse{Version: "v9.9.9", GoVersion: "go1.26", Platform: "linux/amd64"}, nil
}

// testAdmin is the user the harness's config names.
var testAdmin = pki.Identity{Role: pki.RoleAdmin, Name: "test-admin"}

// harness runs CLI invocations against a fake cluster served over mutual
// TLS on loopback.
type harness struct {
	t    *testing.T
	fake *fakeCluster
	// ca issued the fake server's certificate and the config's client
	// certificate.
	ca     *pki.CA
	addr   string
	config string
	now    time.Time
	env    map[string]string
	stdin  string
}

// newHarness makes a cluster CA, serves fake on 127.0.0.1:0 with a server
// certificate of that CA (client certificates required), and writes a
// config naming it with an admin's certificate of the same CA.
func newHarness(t *testing.T, fake *fakeCluster) *harness {
	t.Helper()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatalf("new CA: %v", err)
	}
	fake.ca = ca
	certPEM, keyPEM, err := ca.Issue(pki.Identity{Role: pki.RoleServer, Name: "fake"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	pair, err := pki.KeyPair(certPEM, keyPEM, nil)
	if err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	creds := pki.NewCredentials(ca.Cert, pair)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(creds.ServerConfig(tls.RequireAndVerifyClientCert, nil, "h2"))))
	corralpb.RegisterClusterServer(srv, fake)
	go func() { _ = srv.Serve(lis) }() // Serve returns when Stop is called
	t.Cleanup(srv.Stop)
	h := &harness{
		t: t, fake: fake, ca: ca, addr: lis.Addr().String(),
		config: filepath.Join(t.TempDir(), "config"),
		now:    time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		env:    map[string]string{},
	}
	h.writeConfig(h.config, h.userConfig(testAdmin, h.addr))
	return h
}

// userConfig is a config naming servers, with the harness's CA and a new
// certificate for id.
func (h *harness) userConfig(id pki.Identity, servers ...string) *Config {
	h.t.Helper()
	certPEM, keyPEM, err := h.ca.Issue(id, time.Now(), time.Hour)
	if err != nil {
		h.t.Fatalf("issue %s: %v", id, err)
	}
	return &Config{Servers: servers, CertificateAuthorityData: h.ca.CertPEM, ClientCertificateData: certPEM, ClientKeyData: keyPEM}
}

// writeConfig writes c to path.
func (h *harness) writeConfig(path string, c *Config) {
	h.t.Helper()
	if err := WriteConfig(path, c); err != nil {
		h.t.Fatalf("write config: %v", err)
	}
}

// setServers rewrites the harness's config to name servers.
func (h *harness) setServers(servers ...string) {
	h.t.Helper()
	c, err := ReadConfig(h.config)
	if err != nil {
		h.t.Fatalf("read config: %v", err)
	}
	c.Servers = servers
	h.writeConfig(h.config, c)
}

// run executes one CLI invocation and returns stdout, stderr and the exit
// code.
func (h *harness) run(args ...string) (string, string, int) {
	h.t.Helper()
	var out, errOut bytes.Buffer
	g := &globals{
		in: strings.NewReader(h.stdin), out: &out, errOut: &errOut,
		now:     func() time.Time { return h.now },
		getenv:  func(k string) string { return h.env[k] },
		homeDir: func() (string, error) { return h.t.TempDir(), nil },
	}
	root := newRootCommand(g)
	root.SetArgs(append([]string{"--config", h.config}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), ExitCode(err)
}

// mustRun runs an invocation that must succeed.
func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("corral %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// writeFile writes a file in a temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// sortedAuth returns the distinct client identities seen.
func (f *fakeCluster) sortedAuth() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := map[string]bool{}
	for _, a := range f.auth {
		set[a] = true
	}
	out := sortedKeys(set)
	sort.Strings(out)
	return out
}

// String describes the fake for failure messages.
func (f *fakeCluster) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("fakeCluster{%d objects, rv %d}", len(f.objs), f.rv)
}
