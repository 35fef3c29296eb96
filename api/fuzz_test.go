package api

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// FuzzDecode checks that Decode never panics on any input, and that every
// object it decodes encodes (as JSON and as YAML) to something that decodes
// to an equal object. Defaulting and validation must not panic either.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob("testdata/seed/*.yml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed manifests: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		baseDaemonSetYAML,
		`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"binaryData":{"k":"aGk="}}]}`,
		`{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"r","creationTimestamp":"2026-01-02T03:04:05.5+02:00"},"data":{"a":[1,2.5,"x",null]},"revision":3}`,
		"apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n  taints: [{key: k, effect: NoSchedule}]\n---\n# c\n",
		"apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: p}\nvalue: 10\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode(data, "fuzz")
		if err != nil {
			return
		}
		for _, o := range objs {
			assertFuzzRoundTrip(t, o)
			d := proto.Clone(o).(*corralpb.Object)
			SetDefaults(d)
			_ = Validate(d)
			_ = ValidateUpdate(d, o)
			assertFuzzRoundTrip(t, d)
		}
	})
}

func assertFuzzRoundTrip(t *testing.T, o *corralpb.Object) {
	t.Helper()
	for _, marshal := range []func(*corralpb.Object) ([]byte, error){MarshalJSON, MarshalYAML} {
		out, err := marshal(o)
		if err != nil {
			t.Fatalf("marshal decoded object: %v\n%v", err, o)
		}
		back, err := Decode(out, "re-encoded")
		if err != nil {
			t.Fatalf("decode re-encoded object: %v\n%s", err, out)
		}
		if len(back) != 1 || !proto.Equal(back[0], o) {
			t.Fatalf("re-encoded object differs:\n in  %v\n out %v\n via %s", o, back, out)
		}
	}
}
