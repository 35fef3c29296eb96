package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestMarshalJSON(t *testing.T) {
	ds := Wrap(&corralpb.DaemonSet{
		ApiVersion: "ignored", Kind: "ignored",
		Metadata: &corralpb.ObjectMeta{
			Name: "ds", Generation: 9007199254740993,
			Labels:            map[string]string{"z": "1", "a": "2"},
			CreationTimestamp: &timestamppb.Timestamp{Seconds: 1795867200, Nanos: 999},
		},
		Spec: &corralpb.DaemonSetSpec{
			RevisionHistoryLimit: proto.Int32(0),
			UpdateStrategy: &corralpb.DaemonSetUpdateStrategy{RollingUpdate: &corralpb.RollingUpdateDaemonSet{
				MaxUnavailable: &corralpb.IntOrString{IsString: true, StrVal: "10%"},
				MaxSurge:       &corralpb.IntOrString{},
			}},
			Template: &corralpb.PodTemplateSpec{Spec: &corralpb.PodSpec{
				HostPid:         true,
				SecurityContext: &corralpb.PodSecurityContext{},
				Containers: []*corralpb.Container{{
					Name: "c", Image: "x<y",
					SecurityContext: &corralpb.SecurityContext{Privileged: proto.Bool(false)},
				}},
			}},
		},
		Status: &corralpb.DaemonSetStatus{ObservedGeneration: 7},
	})
	got, err := MarshalJSON(ds)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"apps/v1","kind":"DaemonSet",` +
		`"metadata":{"creationTimestamp":"2026-11-28T12:00:00Z","generation":9007199254740993,"labels":{"a":"2","z":"1"},"name":"ds"},` +
		`"spec":{"revisionHistoryLimit":0,"template":{"spec":{"containers":[{"image":"x<y","name":"c","securityContext":{"privileged":false}}],"hostPID":true,"securityContext":{}}},` +
		`"updateStrategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":"10%"}}},` +
		`"status":{"observedGeneration":7}}`
	if string(got) != want {
		t.Errorf("MarshalJSON:\n got %s\nwant %s", got, want)
	}

	indented, err := MarshalJSONIndent(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(indented), "{\n    \"apiVersion\": \"apps/v1\",\n    \"kind\": \"DaemonSet\",") {
		t.Errorf("MarshalJSONIndent:\n%s", indented)
	}
	y, err := MarshalYAML(ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"apiVersion: apps/v1\n", "generation: 9007199254740993\n", "maxSurge: 0\n", "observedGeneration: 7\n", "privileged: false\n"} {
		if !strings.Contains(string(y), w) {
			t.Errorf("MarshalYAML lacks %q:\n%s", w, y)
		}
	}
}

func TestMarshalSpecialValues(t *testing.T) {
	cr := Wrap(&corralpb.ControllerRevision{
		Metadata: &corralpb.ObjectMeta{Name: "r"},
		Data:     &corralpb.RawExtension{Raw: []byte(`{"b": 1, "a": [true]}`)},
		Revision: 3,
	})
	got, err := MarshalJSON(cr)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"apiVersion":"apps/v1","data":{"b":1,"a":[true]},"kind":"ControllerRevision","metadata":{"name":"r"},"revision":3}`; string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	cr.GetControllerRevision().Data.Raw = []byte("{not json")
	if _, err := MarshalJSON(cr); err == nil {
		t.Error("invalid raw extension should fail to marshal")
	}
	cm := Wrap(&corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "c"}, BinaryData: map[string][]byte{"k": []byte("hello")}})
	got, err = MarshalJSON(cm)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"binaryData":{"k":"aGVsbG8="}`) {
		t.Errorf("bytes not base64: %s", got)
	}
	if _, err := MarshalJSON(&corralpb.Object{}); err == nil {
		t.Error("empty object should fail to marshal")
	}
}

func TestMarshalList(t *testing.T) {
	items := []*corralpb.Object{
		Wrap(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "a"}}),
		Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n"}}),
	}
	j, err := MarshalList(items, false)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		APIVersion string                       `json:"apiVersion"`
		Kind       string                       `json:"kind"`
		Items      []map[string]json.RawMessage `json:"items"`
		Metadata   map[string]string            `json:"metadata"`
	}
	if err := json.Unmarshal(j, &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 2 || list.Metadata["resourceVersion"] != "" {
		t.Errorf("list = %+v", list)
	}
	if !strings.Contains(string(j), "\n    \"items\": [") {
		t.Errorf("list JSON not indented by four spaces:\n%s", j)
	}
	empty, err := MarshalList(nil, false)
	if err != nil || !strings.Contains(string(empty), `"items": []`) {
		t.Errorf("empty list: %s %v", empty, err)
	}
	y, err := MarshalList(items, true)
	if err != nil || !strings.HasPrefix(string(y), "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Namespace\n") {
		t.Errorf("YAML list:\n%s %v", y, err)
	}
	back, err := Decode(y, "list.yaml")
	if err != nil || len(back) != 2 || !proto.Equal(back[1], items[1]) {
		t.Errorf("list does not decode back: %v %v", back, err)
	}
}

func TestToMap(t *testing.T) {
	ds := Wrap(&corralpb.DaemonSet{
		Metadata: &corralpb.ObjectMeta{Name: "ds", Generation: 4},
		Spec:     &corralpb.DaemonSetSpec{MinReadySeconds: 2},
	})
	m, err := ToMap(ds)
	if err != nil {
		t.Fatal(err)
	}
	md := m["metadata"].(map[string]any)
	if md["generation"] != int64(4) || m["spec"].(map[string]any)["minReadySeconds"] != int64(2) || m["kind"] != "DaemonSet" {
		t.Errorf("ToMap = %v", m)
	}
	cr := Wrap(&corralpb.ControllerRevision{Data: &corralpb.RawExtension{Raw: []byte(`{"f":2.5,"l":[1]}`)}})
	m, err = ToMap(cr)
	if err != nil {
		t.Fatal(err)
	}
	data := m["data"].(map[string]any)
	if data["f"] != 2.5 || data["l"].([]any)[0] != int64(1) {
		t.Errorf("ToMap raw data = %v", data)
	}
}

// TestSeedRoundTrip decodes every seed manifest, encodes it as JSON and
// decodes that again: the objects must be equal, before and after
// defaulting, and the defaulted seeds must validate.
func TestSeedRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/seed/*.yml")
	if err != nil || len(files) != 10 {
		t.Fatalf("want 10 seed manifests, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(data, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 || KindOf(objs[0]) != "DaemonSet" {
				t.Fatalf("want one DaemonSet, got %v", objs)
			}
			o := objs[0]
			assertRoundTrip(t, o)
			SetDefaults(o)
			assertRoundTrip(t, o)
			if err := Validate(o); err != nil {
				t.Errorf("seed does not validate: %v", err)
			}
		})
	}
}

func assertRoundTrip(t *testing.T, o *corralpb.Object) {
	t.Helper()
	for _, marshal := range []func(*corralpb.Object) ([]byte, error){MarshalJSON, MarshalJSONIndent, MarshalYAML} {
		out, err := marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(out, "round-trip")
		if err != nil {
			t.Fatalf("decode %s: %v", out, err)
		}
		if len(back) != 1 || !proto.Equal(back[0], o) {
			t.Fatalf("round trip differs:\n in  %v\n out %v\n via %s", o, back, out)
		}
	}
}

func TestGenerationsAreNumbers(t *testing.T) {
	data, err := os.ReadFile("testdata/seed/daemonset-basic.yml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data, "basic")
	if err != nil {
		t.Fatal(err)
	}
	ds := objs[0].GetDaemonSet()
	ds.Metadata.Generation = 3
	ds.Status = &corralpb.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3}
	j, err := MarshalJSON(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"generation":3`, `"observedGeneration":2`, `"desiredNumberScheduled":3`} {
		if !strings.Contains(string(j), w) {
			t.Errorf("JSON lacks %s: %s", w, j)
		}
	}
}

// TestCodecCoversModel walks every kind's message: each field must be of a
// kind the codec reads and writes, so that a field added to the .proto
// with a new kind is caught here rather than at run time.
func TestCodecCoversModel(t *testing.T) {
	supported := map[protoreflect.Kind]bool{
		protoreflect.StringKind: true, protoreflect.BoolKind: true, protoreflect.BytesKind: true,
		protoreflect.Int32Kind: true, protoreflect.Int64Kind: true, protoreflect.MessageKind: true,
	}
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		switch md.FullName() {
		case intOrStringName, rawExtensionName, timestampName:
			return
		}
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			if fd.IsMap() {
				if fd.MapKey().Kind() != protoreflect.StringKind {
					t.Errorf("%s: map key kind %s", fd.FullName(), fd.MapKey().Kind())
				}
				fd = fd.MapValue()
			}
			if !supported[fd.Kind()] {
				t.Errorf("%s: field kind %s is not supported by the codec", fd.FullName(), fd.Kind())
			}
			if fd.Kind() == protoreflect.MessageKind {
				walk(fd.Message())
			}
		}
	}
	for _, e := range kindTable {
		walk(e.inner().ProtoReflect().Descriptor())
	}
	if len(seen) < 50 {
		t.Errorf("walked only %d messages", len(seen))
	}
}
