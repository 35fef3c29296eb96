package api

import (
	"strings"
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

const patchDS = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd
  namespace: kube-system
  finalizers: [example.com/a]
spec:
  selector:
    matchLabels: {app: fluentd}
  template:
    metadata:
      labels: {app: fluentd}
    spec:
      nodeSelector: {disktype: ssd}
      tolerations:
      - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
      - {key: dedicated, operator: Exists, effect: NoExecute}
      containers:
      - name: fluentd
        image: fluentd:v4
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        ports:
        - {containerPort: 24224, hostPort: 24224}
        volumeMounts:
        - {name: varlog, mountPath: /var/log}
      - name: sidecar
        image: busybox:1.36
      volumes:
      - name: varlog
        hostPath: {path: /var/log}
`

func patchFixture(t *testing.T) *corralpb.Object {
	t.Helper()
	objs, err := Decode([]byte(patchDS), "patchDS")
	if err != nil {
		t.Fatal(err)
	}
	return objs[0]
}

// TestPatch applies patches of each type to a DaemonSet and compares the
// result's JSON at a few paths with what Kubernetes' apiserver gives for
// the same patch.
func TestPatch(t *testing.T) {
	for _, tc := range []struct {
		name, typ, patch string
		path             string // evaluated with a JSONPath-like walk
		want             string
	}{
		{"strategic: containers merge by name", PatchStrategic,
			`{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","image":"fluentd:v5"}]}}}}`,
			"spec.template.spec.containers", `[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"fluentd:v5","name":"fluentd","ports":[{"containerPort":24224,"hostPort":24224}],"volumeMounts":[{"mountPath":"/var/log","name":"varlog"}]},{"image":"busybox:1.36","name":"sidecar"}]`},
		{"strategic: a new container is appended", PatchStrategic,
			`spec: {template: {spec: {containers: [{name: exporter, image: "prom/node-exporter:v1.8"}]}}}`,
			"spec.template.spec.containers.name", `["fluentd","sidecar","exporter"]`},
		{"strategic: env merges by name inside the merged container", PatchStrategic,
			`{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","env":[{"name":"B","value":"two"},{"name":"C","value":"3"}]}]}}}}`,
			"spec.template.spec.containers.env", `[[{"name":"A","value":"1"},{"name":"B","value":"two"},{"name":"C","value":"3"}],null]`},
		{"strategic: $patch delete removes one element", PatchStrategic,
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`,
			"spec.template.spec.containers.name", `["fluentd"]`},
		{"strategic: tolerations are replaced whole", PatchStrategic,
			`{"spec":{"template":{"spec":{"tolerations":[{"operator":"Exists"}]}}}}`,
			"spec.template.spec.tolerations", `[{"operator":"Exists"}]`},
		{"strategic: null deletes a key", PatchStrategic,
			`{"spec":{"template":{"spec":{"nodeSelector":{"disktype":null,"zone":"a"}}}}}`,
			"spec.template.spec.nodeSelector", `{"zone":"a"}`},
		{"strategic: $patch replace on a map", PatchStrategic,
			`{"spec":{"template":{"spec":{"nodeSelector":{"$patch":"replace","zone":"b"}}}}}`,
			"spec.template.spec.nodeSelector", `{"zone":"b"}`},
		{"strategic: $patch replace in a list", PatchStrategic,
			`{"spec":{"template":{"spec":{"volumes":[{"$patch":"replace"},{"name":"tmp","emptyDir":{}}]}}}}`,
			"spec.template.spec.volumes", `[{"emptyDir":{},"name":"tmp"}]`},
		{"strategic: $retainKeys", PatchStrategic,
			`{"spec":{"template":{"spec":{"volumes":[{"name":"varlog","emptyDir":{},"$retainKeys":["name","emptyDir"]}]}}}}`,
			"spec.template.spec.volumes", `[{"emptyDir":{},"name":"varlog"}]`},
		{"strategic: finalizers merge as a set", PatchStrategic,
			`{"metadata":{"finalizers":["example.com/b","example.com/a"]}}`,
			"metadata.finalizers", `["example.com/a","example.com/b"]`},
		{"strategic: $deleteFromPrimitiveList", PatchStrategic,
			`{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/a"]}}`,
			"metadata.finalizers", `null`},
		{"strategic: ports merge by containerPort", PatchStrategic,
			`{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","ports":[{"containerPort":24224,"hostPort":24225}]}]}}}}`,
			"spec.template.spec.containers.ports", `[[{"containerPort":24224,"hostPort":24225}],null]`},
		{"merge: lists are replaced", PatchMerge,
			`{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","image":"fluentd:v5"}]}}}}`,
			"spec.template.spec.containers", `[{"image":"fluentd:v5","name":"fluentd"}]`},
		{"merge: null deletes", PatchMerge,
			`{"spec":{"template":{"spec":{"nodeSelector":null}}}}`,
			"spec.template.spec.nodeSelector", `null`},
		{"json: remove the first toleration", PatchJSON,
			`[{"op":"remove","path":"/spec/template/spec/tolerations/0"}]`,
			"spec.template.spec.tolerations.key", `["dedicated"]`},
		{"json: replace an image", PatchJSON,
			`[{"op":"test","path":"/spec/template/spec/containers/1/name","value":"sidecar"},{"op":"replace","path":"/spec/template/spec/containers/1/image","value":"busybox:1.37"}]`,
			"spec.template.spec.containers.image", `["fluentd:v4","busybox:1.37"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := patchFixture(t)
			before, _ := MarshalJSON(orig)
			got, err := Patch(orig, tc.typ, []byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := MarshalJSON(orig); string(after) != string(before) {
				t.Fatal("Patch changed the object it was given")
			}
			m, err := ToMap(got)
			if err != nil {
				t.Fatal(err)
			}
			if s := compact(t, walk(m, strings.Split(tc.path, "."))); s != tc.want {
				t.Fatalf("%s = %s\nwant       %s", tc.path, s, tc.want)
			}
			if KindOf(got) != "DaemonSet" || Meta(got).GetName() != "fluentd" {
				t.Fatalf("patched object %s", Ref(got))
			}
		})
	}
}

func TestPatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name, typ, patch, want string
	}{
		{"unparsable", PatchStrategic, `{"spec":`, `unable to parse "{\"spec\":"`},
		{"a list as a strategic patch", PatchStrategic, `[1]`, "a strategic merge patch must be an object"},
		{"a list as a merge patch", PatchMerge, `[1]`, "a merge patch must be an object"},
		{"an unknown field", PatchStrategic, `{"spec":{"template":{"spec":{"nodeSelectr":{"a":"b"}}}}}`, "spec.template.spec.nodeSelectr: unknown field"},
		{"a value of the wrong type", PatchMerge, `{"spec":{"minReadySeconds":"ten"}}`, "spec.minReadySeconds"},
		{"a JSON patch on a missing path", PatchJSON, `[{"op":"replace","path":"/spec/nope/x","value":1}]`, "apply json patch to daemonset.apps/fluentd"},
		{"a failed JSON patch test", PatchJSON, `[{"op":"test","path":"/metadata/name","value":"other"}]`, "apply json patch to daemonset.apps/fluentd"},
		{"a merge-keyed element without its key", PatchStrategic, `{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}`, "spec.template.spec.containers[0]: name: Required value"},
		{"an unknown directive", PatchStrategic, `{"spec":{"$patch":"explode"}}`, "spec: unknown $patch directive explode"},
		{"an unknown type", "apply", `{}`, `--type must be one of [json merge strategic], not "apply"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Patch(patchFixture(t), tc.typ, []byte(tc.patch))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// walk follows path through maps, mapping over lists as JSONPath's [*]
// would.
func walk(v any, path []string) any {
	if len(path) == 0 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		return walk(x[path[0]], path[1:])
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, walk(e, path))
		}
		return out
	}
	return nil
}

func compact(t *testing.T, v any) string {
	t.Helper()
	b, err := writeJSON(v, false)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
