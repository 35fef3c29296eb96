package api

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

const minimalDS = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ds
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: c
        image: nginx
`

func TestDecodeDocuments(t *testing.T) {
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
	}
	tests := []struct {
		name  string
		input string
		want  []string // names of the decoded objects
	}{
		{"single", cm("a"), []string{"a"}},
		{"multi", cm("a") + "---\n" + cm("b"), []string{"a", "b"}},
		{"leading separator", "---\n" + cm("a"), []string{"a"}},
		{"trailing separator", cm("a") + "---\n", []string{"a"}},
		{"empty documents", "---\n---\n\n---\n" + cm("a") + "---\n   \n---\n" + cm("b"), []string{"a", "b"}},
		{"comment-only documents", "# header\n---\n" + cm("a") + "---\n# nothing here\n  # indented\n---\n" + cm("b"), []string{"a", "b"}},
		{"separator with comment", cm("a") + "--- # next\n" + cm("b"), []string{"a", "b"}},
		{"separator with trailing spaces", cm("a") + "---   \n" + cm("b"), []string{"a", "b"}},
		{"content on separator line", "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n", []string{"a"}},
		{"document end marker", cm("a") + "...\n---\n" + cm("b"), []string{"a", "b"}},
		{"CRLF", strings.ReplaceAll(cm("a")+"---\n"+cm("b"), "\n", "\r\n"), []string{"a", "b"}},
		{"BOM", "\xef\xbb\xbf" + cm("a"), []string{"a"}},
		{"null document", "~\n---\n" + cm("a"), []string{"a"}},
		{"dashes inside block scalar", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: |\n    ---\n    y\n", []string{"a"}},
		{"JSON", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`, []string{"a"}},
		{"JSON stream", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}
			{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`, []string{"a", "b"}},
		{"YAML flow mapping", `{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}`, []string{"a"}},
		{"List", "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- " +
			strings.ReplaceAll(strings.TrimSpace(cm("a")), "\n", "\n  ") + "\n- " +
			strings.ReplaceAll(strings.TrimSpace(cm("b")), "\n", "\n  ") + "\n", []string{"a", "b"}},
		{"typed List", `{"apiVersion":"v1","kind":"ConfigMapList","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]}`, []string{"a"}},
		{"empty List", "apiVersion: v1\nkind: List\nitems: []\n", nil},
		{"nothing", "# only a comment\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.input), "test.yaml")
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, Meta(o).GetName())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	input := `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ds
  generation: 9007199254740993
  creationTimestamp: "2026-11-28T12:00:00.123456Z"
  labels: null
  annotations: {a: "1"}
spec:
  minReadySeconds: 5
  revisionHistoryLimit: 0
  updateStrategy:
    rollingUpdate: {maxUnavailable: "10%", maxSurge: 0}
  template:
    spec:
      hostPID: true
      securityContext: null
      containers:
      - name: c
        image: nginx
        securityContext: {privileged: false}
        livenessProbe:
          httpGet: {port: http}
        readinessProbe:
          tcpSocket: {port: 8080}
status:
  observedGeneration: 3
`
	objs, err := Decode([]byte(input), "ds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ds := objs[0].GetDaemonSet()
	if ds.ApiVersion != "" || ds.Kind != "" {
		t.Errorf("type meta stored in the message: %q %q", ds.ApiVersion, ds.Kind)
	}
	md := ds.Metadata
	if md.Generation != 9007199254740993 {
		t.Errorf("generation = %d", md.Generation)
	}
	if md.CreationTimestamp.GetSeconds() != 1795867200 || md.CreationTimestamp.GetNanos() != 0 {
		t.Errorf("creationTimestamp = %v (want seconds precision)", md.CreationTimestamp)
	}
	if md.Labels != nil || md.Annotations["a"] != "1" {
		t.Errorf("labels %v annotations %v", md.Labels, md.Annotations)
	}
	spec := ds.Spec
	if spec.MinReadySeconds != 5 || spec.RevisionHistoryLimit == nil || *spec.RevisionHistoryLimit != 0 {
		t.Errorf("minReadySeconds %d revisionHistoryLimit %v", spec.MinReadySeconds, spec.RevisionHistoryLimit)
	}
	ru := spec.UpdateStrategy.RollingUpdate
	if !proto.Equal(ru.MaxUnavailable, &corralpb.IntOrString{IsString: true, StrVal: "10%"}) || !proto.Equal(ru.MaxSurge, &corralpb.IntOrString{}) {
		t.Errorf("rollingUpdate = %v", ru)
	}
	ps := spec.Template.Spec
	c := ps.Containers[0]
	if !ps.HostPid || ps.SecurityContext != nil || c.SecurityContext.Privileged == nil || *c.SecurityContext.Privileged {
		t.Errorf("pod spec = %v", ps)
	}
	if p := c.LivenessProbe.HttpGet.Port; !p.IsString || p.StrVal != "http" {
		t.Errorf("liveness port = %v", p)
	}
	if p := c.ReadinessProbe.TcpSocket.Port; p.IsString || p.IntVal != 8080 {
		t.Errorf("readiness port = %v", p)
	}
	if ds.Status.ObservedGeneration != 3 {
		t.Errorf("observedGeneration = %d", ds.Status.ObservedGeneration)
	}
}

func TestDecodeRawAndBytes(t *testing.T) {
	input := `{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"r"},"revision":2,
		"data":{"spec":{"template":{"b":1,"a":[true,null,"x<y"]}}}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"binaryData":{"k":"aGVsbG8="},"immutable":false}`
	objs, err := Decode([]byte(input), "in.json")
	if err != nil {
		t.Fatal(err)
	}
	cr := objs[0].GetControllerRevision()
	if got := string(cr.Data.Raw); got != `{"spec":{"template":{"b":1,"a":[true,null,"x<y"]}}}` {
		t.Errorf("raw = %s", got)
	}
	cm := objs[1].GetConfigMap()
	if string(cm.BinaryData["k"]) != "hello" || cm.Immutable == nil || *cm.Immutable {
		t.Errorf("configmap = %v", cm)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // substrings of the error
	}{
		{"unknown field", strings.Replace(minimalDS, "image: nginx", "image: nginx\n        imagePullPolcy: Always", 1),
			[]string{`error decoding src.yaml (document 1): spec.template.spec.containers[0].imagePullPolcy: unknown field "imagePullPolcy"`}},
		{"unknown top-level field", minimalDS + "extra: 1\n", []string{`extra: unknown field "extra"`}},
		{"proto name is not a json name", strings.Replace(minimalDS, "name: ds", "name: ds\n  generate_name: x", 1),
			[]string{`metadata.generate_name: unknown field "generate_name"`}},
		{"document number", minimalDS + "---\n# comment\n---\n" + minimalDS + "  bogus: 1\n",
			[]string{`(document 2): spec.bogus: unknown field "bogus"`}},
		{"string for int", minimalDS + "  minReadySeconds: ten\n", []string{`spec.minReadySeconds: expected integer, got string "ten"`}},
		{"fraction for int", minimalDS + "  minReadySeconds: 1.5\n", []string{`spec.minReadySeconds: expected integer, got number 1.5`}},
		{"int32 overflow", minimalDS + "  minReadySeconds: 2147483648\n", []string{`spec.minReadySeconds: value 2147483648 out of range for int32`}},
		{"int64 overflow", strings.Replace(minimalDS, "name: ds", "name: ds\n  generation: 99999999999999999999", 1),
			[]string{`metadata.generation: value 100000000000000000000 out of range for int64`}},
		{"bool for string", strings.Replace(minimalDS, "image: nginx", "image: true", 1),
			[]string{`spec.template.spec.containers[0].image: expected string, got boolean true`}},
		{"object for list", strings.Replace(minimalDS, "image: nginx", "image: nginx\n        ports: {a: 1}", 1),
			[]string{`spec.template.spec.containers[0].ports: expected array, got object`}},
		{"list for object", minimalDS + "  updateStrategy: []\n", []string{`spec.updateStrategy: expected object, got array`}},
		{"map value type", strings.Replace(minimalDS, "name: ds", "name: ds\n  labels: {a: [1]}", 1),
			[]string{`metadata.labels[a]: expected string, got array`}},
		{"int-or-string type", minimalDS + "  updateStrategy: {rollingUpdate: {maxSurge: true}}\n",
			[]string{`spec.updateStrategy.rollingUpdate.maxSurge: expected integer or string, got boolean true`}},
		{"int-or-string range", minimalDS + "  updateStrategy: {rollingUpdate: {maxSurge: 4294967296}}\n",
			[]string{`maxSurge: value 4294967296 out of range for int32`}},
		{"bad timestamp", strings.Replace(minimalDS, "name: ds", "name: ds\n  creationTimestamp: yesterday", 1),
			[]string{`metadata.creationTimestamp: invalid RFC 3339 time "yesterday"`}},
		{"bad base64", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"binaryData":{"k":"%%%"}}`,
			[]string{`binaryData[k]: invalid base64 data`}},
		{"several errors", minimalDS + "  a: 1\n  b: 2\n", []string{`spec.a: unknown field "a"; spec.b: unknown field "b"`}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"kind not set"}},
		{"missing apiVersion", "kind: ConfigMap\nmetadata: {name: a}\n", []string{"apiVersion not set"}},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deployment\n", []string{`no matches for kind "Deployment" in version "apps/v1"`}},
		{"wrong version", "apiVersion: extensions/v1beta1\nkind: DaemonSet\n", []string{`no matches for kind "DaemonSet" in version "extensions/v1beta1"`}},
		{"kind not a string", "apiVersion: v1\nkind: 3\n", []string{"kind: expected string, got number 3"}},
		{"scalar document", "hello\n", []string{"expected an object, got string"}},
		{"YAML syntax", "a: b\n c: d\n", []string{"error decoding src.yaml (document 1): "}},
		{"YAML duplicate key", "apiVersion: v1\nkind: ConfigMap\nkind: ConfigMap\n", []string{`"kind" already set`}},
		{"JSON duplicate key", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`,
			[]string{`(document 1): metadata.name: duplicate field "name"`}},
		{"JSON syntax", `{"apiVersion":"v1",`, []string{"error decoding src.yaml: invalid JSON in document 1: unexpected EOF"}},
		{"List item error", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","data":{"x":1}}]}`,
			[]string{`items[1].data[x]: expected string, got number 1`}},
		{"List item kind", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service"}]}`,
			[]string{`items[0]: no matches for kind "Service" in version "v1"`}},
		{"List unknown field", `{"apiVersion":"v1","kind":"List","items":[],"extra":1}`, []string{`extra: unknown field "extra"`}},
		{"List in List", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"List"}]}`, []string{"a List may not contain a List"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.input), "src.yaml")
			if err == nil {
				t.Fatalf("Decode succeeded with %d objects, want an error", len(objs))
			}
			if objs != nil {
				t.Errorf("Decode returned objects along with an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeNoKindMatchError(t *testing.T) {
	_, err := Decode([]byte("apiVersion: v1\nkind: Service\n"), "s.yaml")
	var nk *NoKindMatchError
	if !errors.As(err, &nk) || nk.Kind != "Service" || nk.APIVersion != "v1" {
		t.Errorf("error %v is not a NoKindMatchError for Service", err)
	}
	_, err = Decode([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"apps/v1","kind":"Deployment"}]}`), "l.json")
	if !errors.As(err, &nk) || nk.Kind != "Deployment" {
		t.Errorf("error %v inside a List is not a NoKindMatchError", err)
	}
}

func TestDecodeFiles(t *testing.T) {
	dir := t.TempDir()
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
	}
	write := func(rel, content string) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("b.yaml", cm("b"))
	write("a.yml", cm("a1")+"---\n"+cm("a2"))
	write("c.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
	write("notes.txt", "not a manifest")
	write("sub/d.yaml", cm("d"))
	explicit := write("other/manifest.txt", cm("e"))

	names := func(objs []*corralpb.Object) string {
		var out []string
		for _, o := range objs {
			out = append(out, Meta(o).GetName())
		}
		return strings.Join(out, ",")
	}
	objs, err := DecodeFiles([]string{dir}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "a1,a2,b,c" {
		t.Errorf("directory: got %s", got)
	}
	objs, err = DecodeFiles([]string{dir}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "a1,a2,b,c,d" {
		t.Errorf("recursive: got %s", got)
	}
	objs, err = DecodeFiles([]string{explicit, filepath.Join(dir, "b.yaml")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "e,b" {
		t.Errorf("explicit files: got %s", got)
	}

	bad := write("bad/x.yaml", cm("x")+"  bogus: 1\n")
	_, err = DecodeFiles([]string{bad, filepath.Join(dir, "missing.yaml")}, false)
	if err == nil || !strings.Contains(err.Error(), "error decoding "+bad+" (document 1): metadata.bogus: unknown field") ||
		!strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("errors: %v", err)
	}
}

func TestDecodeFilesStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	if _, err := w.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	objs, err := DecodeFiles([]string{"-"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || KindOf(objs[0]) != "Namespace" {
		t.Errorf("stdin: %v", objs)
	}
}
