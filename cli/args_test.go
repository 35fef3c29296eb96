package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestParseResourceArgs(t *testing.T) {
	type sel struct {
		Kind  string
		Names []string
	}
	cases := []struct {
		args    []string
		want    []sel
		wantErr string
	}{
		{args: []string{"ds"}, want: []sel{{"DaemonSet", nil}}},
		{args: []string{"daemonsets", "a", "b"}, want: []sel{{"DaemonSet", []string{"a", "b"}}}},
		{args: []string{"DaemonSet.apps", "a"}, want: []sel{{"DaemonSet", []string{"a"}}}},
		{args: []string{"ds,po"}, want: []sel{{"DaemonSet", nil}, {"Pod", nil}}},
		{args: []string{"ds,pods", "x"}, want: []sel{{"DaemonSet", []string{"x"}}, {"Pod", []string{"x"}}}},
		{args: []string{"ds/a", "pod/b", "ds/c"}, want: []sel{{"DaemonSet", []string{"a", "c"}}, {"Pod", []string{"b"}}}},
		{args: []string{"no/node1"}, want: []sel{{"Node", []string{"node1"}}}},
		{args: []string{"foo"}, wantErr: `the server doesn't have a resource type "foo"`},
		{args: []string{"foo/x"}, wantErr: `the server doesn't have a resource type "foo"`},
		{args: []string{"ds", "pod/x"}, wantErr: "there is no need to specify a resource type as a separate argument"},
		{args: []string{"ds/a", "b"}, wantErr: "there is no need to specify a resource type as a separate argument"},
		{args: []string{"ds/"}, wantErr: "arguments in resource/name form must have a single resource and name"},
		{args: []string{"ds/a/b"}, wantErr: "arguments in resource/name form must have a single resource and name"},
	}
	for _, c := range cases {
		got, err := parseResourceArgs(c.args)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: error %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		var simple []sel
		for _, s := range got {
			simple = append(simple, sel{s.kind.Kind, s.names})
		}
		if !reflect.DeepEqual(simple, c.want) {
			t.Errorf("%v: got %+v, want %+v", c.args, simple, c.want)
		}
	}
}

func TestSplitResourcesAndPairs(t *testing.T) {
	res, pairs, err := splitResourcesAndPairs([]string{"nodes", "node1", "a=b", "c-"}, "label")
	if err != nil || !reflect.DeepEqual(res, []string{"nodes", "node1"}) || !reflect.DeepEqual(pairs, []string{"a=b", "c-"}) {
		t.Fatalf("got %v %v %v", res, pairs, err)
	}
	if _, _, err := splitResourcesAndPairs([]string{"nodes", "node1"}, "label"); err == nil || err.Error() != "at least one label update is required" {
		t.Errorf("no pairs: %v", err)
	}
	if _, _, err := splitResourcesAndPairs([]string{"nodes", "a=b", "node1"}, "label"); err == nil || err.Error() != "all resources must be specified before label changes: node1" {
		t.Errorf("resource after pair: %v", err)
	}
}

func TestParseLabelChanges(t *testing.T) {
	c, err := parseLabelChanges([]string{"disktype=ssd", "env=", "old-"})
	if err != nil || !reflect.DeepEqual(c.set, map[string]string{"disktype": "ssd", "env": ""}) || !reflect.DeepEqual(c.remove, []string{"old"}) {
		t.Fatalf("got %+v %v", c, err)
	}
	for spec, want := range map[string]string{
		"a=b=c":     "invalid label spec: a=b=c",
		"a=b c":     `invalid label value: "a=b c"`,
		"bad key=v": "invalid label spec: bad key=v",
	} {
		if _, err := parseLabelChanges([]string{spec}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	if _, err := parseLabelChanges([]string{"a=b", "a-"}); err == nil || err.Error() != "can not both modify and remove a label in the same command" {
		t.Errorf("modify and remove: %v", err)
	}
}

func TestApplyLabelChange(t *testing.T) {
	cur := map[string]string{"disktype": "ssd", "zone": "a"}
	cases := []struct {
		name      string
		specs     []string
		overwrite bool
		want      map[string]string
		msg       string
		missing   []string
		err       string
	}{
		{name: "add", specs: []string{"env=prod"}, want: map[string]string{"disktype": "ssd", "zone": "a", "env": "prod"}, msg: "labeled"},
		{name: "same value", specs: []string{"disktype=ssd"}, want: cur, msg: "not labeled"},
		{name: "change without overwrite", specs: []string{"disktype=hdd"}, err: "'disktype' already has a value (ssd), and --overwrite is false"},
		{name: "change with overwrite", specs: []string{"disktype=hdd"}, overwrite: true, want: map[string]string{"disktype": "hdd", "zone": "a"}, msg: "labeled"},
		{name: "remove", specs: []string{"zone-"}, want: map[string]string{"disktype": "ssd"}, msg: "unlabeled"},
		{name: "remove missing", specs: []string{"nope-"}, want: cur, msg: "not labeled", missing: []string{"nope"}},
		{name: "two conflicts", specs: []string{"disktype=hdd", "zone=b"}, err: "['disktype' already has a value (ssd), and --overwrite is false, 'zone' already has a value (a), and --overwrite is false]"},
	}
	for _, c := range cases {
		ch, err := parseLabelChanges(c.specs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, msg, missing, err := applyLabelChange(cur, ch, c.overwrite)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) || msg != c.msg || !reflect.DeepEqual(missing, c.missing) {
			t.Errorf("%s: got %v %q %v %v", c.name, got, msg, missing, err)
		}
	}
}

func TestParseTaints(t *testing.T) {
	add, remove, err := parseTaints([]string{"dedicated=edge:NoSchedule", "gpu:NoExecute", "dedicated:NoSchedule-", "old-"})
	if err != nil {
		t.Fatal(err)
	}
	if len(add) != 2 || taintString(add[0]) != "dedicated=edge:NoSchedule" || taintString(add[1]) != "gpu:NoExecute" {
		t.Errorf("add: %v", add)
	}
	if len(remove) != 2 || taintString(remove[0]) != "dedicated:NoSchedule" || taintString(remove[1]) != "old" {
		t.Errorf("remove: %v", remove)
	}
	for spec, want := range map[string]string{
		"k=v":              "invalid taint spec: k=v, ",
		"k":                "invalid taint spec: k",
		"k=v:Sometimes":    "invalid taint effect: Sometimes, unsupported taint effect",
		"k=v=w:NoSchedule": "invalid taint spec: k=v=w:NoSchedule",
		"a:b:c":            "invalid taint spec: a:b:c",
	} {
		if _, _, err := parseTaints([]string{spec}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want prefix %q", spec, err, want)
		}
	}
	if _, _, err := parseTaints([]string{"k=a:NoSchedule", "k=b:NoSchedule"}); err == nil || err.Error() != "duplicated taints with the same key and effect: k=b:NoSchedule" {
		t.Errorf("duplicate: %v", err)
	}
}

func TestReorganizeTaints(t *testing.T) {
	old := []*corralpb.Taint{{Key: "a", Effect: "NoSchedule"}, {Key: "b", Value: "x", Effect: "NoExecute"}}
	tn := func(s string) *corralpb.Taint {
		tt, err := parseTaint(s)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	cases := []struct {
		name        string
		add, remove []*corralpb.Taint
		overwrite   bool
		msg, list   string
		err         string
	}{
		{name: "add", add: []*corralpb.Taint{tn("c:NoSchedule")}, msg: "tainted", list: "c:NoSchedule a:NoSchedule b=x:NoExecute"},
		{name: "remove by key and effect", remove: []*corralpb.Taint{tn("a:NoSchedule")}, msg: "untainted", list: "b=x:NoExecute"},
		{name: "remove by key", remove: []*corralpb.Taint{tn("b")}, msg: "untainted", list: "a:NoSchedule"},
		{name: "remove missing", remove: []*corralpb.Taint{tn("z:NoSchedule")}, msg: "untainted", list: "a:NoSchedule b=x:NoExecute", err: `taint "z:NoSchedule" not found`},
		{name: "overwrite", add: []*corralpb.Taint{tn("a=new:NoSchedule")}, overwrite: true, msg: "modified", list: "a=new:NoSchedule b=x:NoExecute"},
		{name: "add and remove", add: []*corralpb.Taint{tn("c:NoSchedule")}, remove: []*corralpb.Taint{tn("a")}, msg: "modified", list: "c:NoSchedule b=x:NoExecute"},
	}
	for _, c := range cases {
		msg, list, err := reorganizeTaints(old, c.overwrite, c.add, c.remove)
		var parts []string
		for _, tt := range list {
			parts = append(parts, taintString(tt))
		}
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if msg != c.msg || strings.Join(parts, " ") != c.list || gotErr != c.err {
			t.Errorf("%s: got %q %q %q", c.name, msg, strings.Join(parts, " "), gotErr)
		}
	}
	if got := existingTaintKeys(old, []*corralpb.Taint{tn("a=v:NoSchedule"), tn("b:NoSchedule")}); got != "a" {
		t.Errorf("existingTaintKeys = %q", got)
	}
}

func TestFormatError(t *testing.T) {
	inv := &api.InvalidError{Name: "x", Errs: field.ErrorList{field.Required(field.NewPath("spec", "selector"), "")}}
	inv.Kind, _ = api.KindByName("DaemonSet")
	cases := []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, `daemonsets.apps "x" not found`), `Error from server (NotFound): daemonsets.apps "x" not found`},
		{fmt.Errorf("get: %w", status.Error(codes.NotFound, `pods "p" not found`)), `Error from server (NotFound): pods "p" not found`},
		{status.Error(codes.AlreadyExists, `namespaces "a" already exists`), `Error from server (AlreadyExists): namespaces "a" already exists`},
		{status.Error(codes.Aborted, "the object has been modified"), "Error from server (Conflict): the object has been modified"},
		{status.Error(codes.InvalidArgument, `The DaemonSet "x" is invalid: spec.selector: Required value`), `The DaemonSet "x" is invalid: spec.selector: Required value`},
		{status.Error(codes.InvalidArgument, `DaemonSet.apps "x" is invalid: spec.selector: Required value`), `Error from server (Invalid): DaemonSet.apps "x" is invalid: spec.selector: Required value`},
		{status.Error(codes.PermissionDenied, "no"), "Error from server (Forbidden): no"},
		{status.Error(codes.Unauthenticated, "bad token"), "error: You must be logged in to the server (Unauthorized): bad token"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), "Unable to connect to the server: dial tcp 127.0.0.1:1: connect: connection refused"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: verify peer certificate: x509: certificate signed by unknown authority (possibly because of \"x509: ECDSA verification failure\")"`),
			`Unable to connect to the server: TLS handshake failed: verify peer certificate: x509: certificate signed by unknown authority (possibly because of "x509: ECDSA verification failure")`},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "Error from server (Timeout): context deadline exceeded"},
		{status.Error(codes.Internal, "boom"), "Error from server (InternalError): boom"},
		{errors.New("the server doesn't have a resource type \"foo\""), `error: the server doesn't have a resource type "foo"`},
		{fmt.Errorf("wrapped: %w", inv), `The DaemonSet "x" is invalid: spec.selector: Required value`},
	}
	for _, c := range cases {
		if got := formatError(c.err); got != c.want {
			t.Errorf("formatError(%v)\n got %q\nwant %q", c.err, got, c.want)
		}
	}
}

func TestConfigLookupOrder(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	// Each config's certificate data names its server, so the test sees
	// which file the credentials came from.
	mk := func(path, server string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		c := &Config{Servers: []string{server}, CertificateAuthorityData: []byte("ca-" + server),
			ClientCertificateData: []byte("cert-" + server), ClientKeyData: []byte("key-" + server)}
		if err := WriteConfig(path, c); err != nil {
			t.Fatal(err)
		}
	}
	flagConf, envConf, userConf := filepath.Join(dir, "flag.conf"), filepath.Join(dir, "env.conf"), filepath.Join(home, ".corral", "config")
	mk(flagConf, "flag:1")
	mk(envConf, "env:1")
	mk(userConf, "user:1")
	env := map[string]string{}
	g := &globals{getenv: func(k string) string { return env[k] }, homeDir: func() (string, error) { return home, nil }}

	check := func(wantServers, wantFrom string) {
		t.Helper()
		c, err := g.connection()
		if err != nil {
			t.Fatalf("connection: %v", err)
		}
		got := strings.Join([]string{string(c.caPEM), string(c.certPEM), string(c.keyPEM)}, " ")
		want := "ca-" + wantFrom + " cert-" + wantFrom + " key-" + wantFrom
		if strings.Join(c.servers, ",") != wantServers || got != want {
			t.Fatalf("got %v %q, want %s %q", c.servers, got, wantServers, want)
		}
	}
	g.configPath = flagConf
	env[configEnv] = envConf
	check("flag:1", "flag:1")
	g.configPath = ""
	check("env:1", "env:1")
	delete(env, configEnv)
	check("user:1", "user:1")
	g.servers = "a:1, b:2"
	check("a:1,b:2", "user:1")

	// Nothing found anywhere.
	g2 := &globals{getenv: func(string) string { return "" }, homeDir: func() (string, error) { return filepath.Join(dir, "nohome"), nil },
		adminConf: filepath.Join(dir, "no-admin.conf")}
	if _, err := g2.connection(); err == nil || !strings.Contains(err.Error(), "no configuration found") {
		t.Fatalf("no config: %v", err)
	}
	// The server's admin.conf is the last candidate.
	mk(g2.adminConf, "admin:1")
	if c, err := g2.connection(); err != nil || strings.Join(c.servers, ",") != "admin:1" || string(c.certPEM) != "cert-admin:1" {
		t.Fatalf("admin.conf: %+v %v", c, err)
	}
	g2.configPath = filepath.Join(dir, "missing.conf")
	if _, err := g2.connection(); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Fatalf("explicit missing config: %v", err)
	}
}

func TestReadConfigRejectsOtherKinds(t *testing.T) {
	p := writeFile(t, "c", "apiVersion: v1\nkind: Config\nservers: [a:1]\n")
	if _, err := ReadConfig(p); err == nil || !strings.Contains(err.Error(), `apiVersion "v1" is not "corral/v1"`) {
		t.Fatalf("ReadConfig: %v", err)
	}
}

func TestTimeoutParsing(t *testing.T) {
	for in, want := range map[string]string{"30s": "30s", "5": "5s", "0": "0s", "1m": "1m0s"} {
		g := &globals{requestTimeout: in}
		d, err := g.timeout()
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	g := &globals{requestTimeout: "soon"}
	if _, err := g.timeout(); err == nil {
		t.Error("bad timeout accepted")
	}
}
