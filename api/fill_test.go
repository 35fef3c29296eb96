package api

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	corralpb "github.com/corral-dev/corral/proto"
)

// daemonPodObj is a pod as the DaemonSet controller makes it for node.
func daemonPodObj(name, node string) *corralpb.Object {
	yes := true
	return Wrap(&corralpb.Pod{
		ApiVersion: "v1", Kind: "Pod",
		Metadata: &corralpb.ObjectMeta{Name: name, GenerateName: "ds-", Namespace: "default", Uid: "uid-" + name, Generation: 1,
			Labels: map[string]string{"app": "ds", "pod-template-generation": "1"},
			OwnerReferences: []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Uid: "ds-uid",
				Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: &corralpb.PodSpec{NodeName: node, HostNetwork: true,
			Containers:  []*corralpb.Container{{Name: "c", Image: "nginx:1.25", Args: []string{"-g", "daemon off;"}}},
			Tolerations: []*corralpb.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute"}},
			Affinity: &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
				NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchFields: []*corralpb.NodeSelectorRequirement{
					{Key: "metadata.name", Operator: "In", Values: []string{node}}}}}}}},
		},
		Status: &corralpb.PodStatus{Phase: "Pending"},
	})
}

// daemonBase is what the DaemonSet's pods share.
func daemonBase() *corralpb.Object {
	b := daemonPodObj("", "")
	p := b.GetPod()
	p.Metadata.Uid = ""
	p.Spec.Affinity = nil
	return b
}

func TestThinThenFillRebuildsTheObject(t *testing.T) {
	base := daemonBase()
	for _, tc := range []struct {
		name string
		obj  *corralpb.Object
	}{
		{"a pod of the base", daemonPodObj("ds-abcde", "n1")},
		{"a pod with a status condition", func() *corralpb.Object {
			o := daemonPodObj("ds-fghij", "")
			o.GetPod().Status.Conditions = []*corralpb.PodCondition{{Type: "PodScheduled", Status: "False", Reason: "Unschedulable"}}
			return o
		}()},
		{"a pod with other labels and a second container", func() *corralpb.Object {
			o := daemonPodObj("ds-klmno", "n2")
			o.GetPod().Metadata.Labels = map[string]string{"app": "ds", "pod-template-generation": "2"}
			o.GetPod().Spec.Containers = append(o.GetPod().Spec.Containers, &corralpb.Container{Name: "d", Image: "busybox"})
			return o
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.obj)
			thin, ok := Thin(tc.obj, base)
			if !ok {
				t.Fatal("Thin refused")
			}
			if !proto.Equal(tc.obj, before) {
				t.Fatal("Thin changed its input")
			}
			if proto.Size(thin) >= proto.Size(tc.obj) {
				t.Errorf("thin object is %d bytes, the whole one %d", proto.Size(thin), proto.Size(tc.obj))
			}
			Fill(thin, base)
			if !proto.Equal(thin, tc.obj) {
				t.Fatalf("Fill(Thin(obj)) differs from obj:\n got %v\nwant %v", thin, tc.obj)
			}
		})
	}
}

func TestFillSharesWhatItTakesFromTheBase(t *testing.T) {
	base := daemonBase()
	thin, ok := Thin(daemonPodObj("ds-abcde", "n1"), base)
	if !ok {
		t.Fatal("Thin refused")
	}
	Fill(thin, base)
	got, want := thin.(*corralpb.Object).GetPod(), base.GetPod()
	if got.Spec == want.Spec {
		t.Fatal("the pod's spec is the base's own: its node would be every pod's")
	}
	if got.Spec.Containers[0] != want.Spec.Containers[0] || got.Spec.Tolerations[0] != want.Spec.Tolerations[0] {
		t.Error("containers and tolerations were copied, not shared with the base")
	}
	if got.Metadata.OwnerReferences[0] != want.Metadata.OwnerReferences[0] {
		t.Error("owner references were copied, not shared with the base")
	}
	if got.Spec.NodeName != "n1" || want.Spec.NodeName != "" {
		t.Errorf("node %q, base's %q", got.Spec.NodeName, want.Spec.NodeName)
	}
}

func TestThinRefusesWhatFillCouldNotRebuild(t *testing.T) {
	base := daemonBase()
	unset := daemonPodObj("ds-abcde", "n1")
	unset.GetPod().Spec.HostNetwork = false // the base's true would be filled in
	if _, ok := Thin(unset, base); ok {
		t.Error("Thin accepted a pod that leaves unset a field the base sets")
	}
	noLabels := daemonPodObj("ds-abcde", "n1")
	noLabels.GetPod().Metadata.Labels = nil
	if _, ok := Thin(noLabels, base); ok {
		t.Error("Thin accepted a pod without the labels the base has")
	}
	cm := Wrap(&corralpb.ConfigMap{ApiVersion: "v1", Kind: "ConfigMap", Metadata: &corralpb.ObjectMeta{Name: "cm"}})
	if _, ok := Thin(cm, base); ok {
		t.Error("Thin accepted a ConfigMap against a Pod base")
	}
}

func TestFillKeepsTheObjectsOwnOneofField(t *testing.T) {
	cm := Wrap(&corralpb.ConfigMap{ApiVersion: "v1", Kind: "ConfigMap", Metadata: &corralpb.ObjectMeta{Name: "cm"}})
	Fill(cm, daemonBase())
	if cm.GetConfigMap() == nil || cm.GetPod() != nil {
		t.Fatalf("Fill replaced the object's kind: %v", cm)
	}
}

// Random changes to a pod of the base, of every kind of field: whenever
// Thin accepts the result, Fill rebuilds it exactly; when Thin refuses,
// Fill alone would have changed it.
func TestThinAndFillOnChangedPods(t *testing.T) {
	base := daemonBase()
	changes := []func(p *corralpb.Pod){
		func(p *corralpb.Pod) { p.Metadata.Labels = map[string]string{"app": "other"} },
		func(p *corralpb.Pod) { p.Metadata.Labels = nil },
		func(p *corralpb.Pod) { p.Metadata.Namespace = "" },
		func(p *corralpb.Pod) { p.Metadata.Namespace = "kube-system" },
		func(p *corralpb.Pod) {
			p.Metadata.OwnerReferences[0] = &corralpb.OwnerReference{Kind: "ReplicaSet", Name: "rs"}
		},
		func(p *corralpb.Pod) { p.Spec.HostNetwork = false },
		func(p *corralpb.Pod) { p.Spec.Containers = nil },
		func(p *corralpb.Pod) { p.Spec.Containers = []*corralpb.Container{{Name: "c", Image: "nginx:1.27"}} },
		func(p *corralpb.Pod) {
			p.Spec.Containers = append([]*corralpb.Container(nil), p.Spec.Containers...)
			p.Spec.Containers = append(p.Spec.Containers, &corralpb.Container{Name: "d"})
		},
		func(p *corralpb.Pod) { p.Spec.Tolerations = nil },
		func(p *corralpb.Pod) { p.Spec.Affinity = nil },
		func(p *corralpb.Pod) { v := int32(7); p.Spec.Priority = &v },
		func(p *corralpb.Pod) { p.Status = nil },
		func(p *corralpb.Pod) { p.Status = &corralpb.PodStatus{Phase: "Running", PodIp: "10.42.0.7"} },
		func(p *corralpb.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} },
	}
	accepted, refused := 0, 0
	for mask := 0; mask < 1<<len(changes); mask += 37 { // a spread of combinations
		obj := daemonPodObj("ds-abcde", "n1")
		for i, change := range changes {
			if mask&(1<<i) != 0 {
				change(obj.GetPod())
			}
		}
		before := proto.Clone(obj)
		thin, ok := Thin(obj, base)
		if !proto.Equal(obj, before) {
			t.Fatalf("mask %#x: Thin changed its input", mask)
		}
		if !ok {
			refused++
			filled := proto.Clone(obj)
			Fill(filled, base)
			if proto.Equal(filled, obj) {
				t.Errorf("mask %#x: Thin refused an object Fill leaves as it is", mask)
			}
			continue
		}
		accepted++
		Fill(thin, base)
		if !proto.Equal(thin, obj) {
			t.Errorf("mask %#x: Fill(Thin(obj)) differs from obj:\n got %v\nwant %v", mask, thin, obj)
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("accepted %d, refused %d: the changes should give both", accepted, refused)
	}
}

// BenchmarkThin thins a DaemonSet pod that shares nothing with the base
// but equal values (the worst case: every field is compared).
func BenchmarkThin(b *testing.B) {
	base := daemonBase()
	obj := daemonPodObj("ds-abcde", "n1")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Thin(obj, base); !ok {
			b.Fatal("Thin refused")
		}
	}
}

// TestEqualValueAgreesWithProtoEqual: on pairs of objects that differ by
// random edits (or not at all, or only in memory: copies), the reflective
// comparison Thin uses says what proto.Equal says. Saying "equal" where
// proto.Equal does not would make Thin drop a field Fill cannot rebuild.
func TestEqualValueAgreesWithProtoEqual(t *testing.T) {
	edits := podEdits()
	rapid.Check(t, func(t *rapid.T) {
		a := daemonPodObj("a", "n1")
		b := proto.Clone(a).(*corralpb.Object)
		for _, o := range []*corralpb.Object{a, b} {
			for range rapid.IntRange(0, 3).Draw(t, "edits") {
				edits[rapid.IntRange(0, len(edits)-1).Draw(t, "edit")](o, t)
			}
			if rapid.IntRange(0, 9).Draw(t, "configmap") == 0 { // the oneof's other member
				o.Kind = &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "a"}}}
			}
		}
		want := proto.Equal(a, b)
		if got := equalValue(reflect.ValueOf(a), reflect.ValueOf(b)); got != want {
			t.Fatalf("equalValue says %v, proto.Equal %v:\n%v\n%v", got, want, a, b)
		}
	})
}

// TestThinThenFillRebuildsEditedPods: a pod edited at random from the
// DaemonSet's is, when Thin takes it, rebuilt exactly by Fill, and Thin
// leaves its input as it was.
func TestThinThenFillRebuildsEditedPods(t *testing.T) {
	edits := podEdits()
	base := daemonBase()
	rapid.Check(t, func(t *rapid.T) {
		o := daemonPodObj("ds-abcde", rapid.SampledFrom([]string{"n1", ""}).Draw(t, "node"))
		for range rapid.IntRange(0, 4).Draw(t, "edits") {
			edits[rapid.IntRange(0, len(edits)-1).Draw(t, "edit")](o, t)
		}
		before := proto.Clone(o)
		thin, ok := Thin(o, base)
		if !proto.Equal(o, before) {
			t.Fatal("Thin changed its input")
		}
		if !ok {
			return
		}
		Fill(thin, base)
		if !proto.Equal(thin, o) {
			t.Fatalf("Fill(Thin(obj)) differs from obj:\n got %v\nwant %v", thin, o)
		}
	})
}

// podEdits are changes to a pod of daemonPodObj's shape, drawn by rapid.
func podEdits() []func(o *corralpb.Object, t *rapid.T) {
	return []func(o *corralpb.Object, t *rapid.T){
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Metadata.Name = rapid.SampledFrom([]string{"a", "b", ""}).Draw(t, "name")
		},
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Metadata.Labels = map[string]string{"app": rapid.SampledFrom([]string{"ds", "other"}).Draw(t, "app"), "pod-template-generation": "1"}
		},
		func(o *corralpb.Object, t *rapid.T) { delete(o.GetPod().Metadata.Labels, "app") },
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().Metadata.Labels = nil },
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Spec.Containers[0].Image = rapid.SampledFrom([]string{"nginx:1.25", "nginx:1.26"}).Draw(t, "image")
		},
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().Spec.Containers[0].Args = nil },
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Spec.Tolerations = append(o.GetPod().Spec.Tolerations, &corralpb.Toleration{Key: "k", Operator: "Exists"})
		},
		func(o *corralpb.Object, t *rapid.T) {
			s := rapid.Int64Range(0, 1).Draw(t, "seconds")
			o.GetPod().Spec.Tolerations[0].TolerationSeconds = &s
		},
		func(o *corralpb.Object, t *rapid.T) {
			v := rapid.Bool().Draw(t, "controller")
			o.GetPod().Metadata.OwnerReferences[0].Controller = &v
		},
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().Metadata.OwnerReferences[0].Controller = nil },
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Spec.HostNetwork = rapid.Bool().Draw(t, "hostNetwork")
		},
		func(o *corralpb.Object, t *rapid.T) {
			o.GetPod().Metadata.Generation = rapid.Int64Range(0, 2).Draw(t, "generation")
		},
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().Spec.Affinity = nil },
		func(o *corralpb.Object, t *rapid.T) {
			if a := o.GetPod().Spec.Affinity; a != nil {
				a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values = []string{"n2"}
			}
		},
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().Status = &corralpb.PodStatus{} },
		func(o *corralpb.Object, t *rapid.T) { o.GetPod().ProtoReflect().SetUnknown([]byte{0xf8, 0x3e, 0x01}) }, // field 999, varint 1
	}
}
