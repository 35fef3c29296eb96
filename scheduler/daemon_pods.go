package scheduler

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Labels the DaemonSet controller puts on its pods, as Kubernetes does.
const (
	LabelRevisionHash       = "controller-revision-hash"
	LabelTemplateGeneration = "pod-template-generation"
)

// Taints every DaemonSet pod tolerates, as Kubernetes adds them.
const (
	taintDiskPressure       = "node.kubernetes.io/disk-pressure"
	taintMemoryPressure     = "node.kubernetes.io/memory-pressure"
	taintPIDPressure        = "node.kubernetes.io/pid-pressure"
	taintNetworkUnavailable = "node.kubernetes.io/network-unavailable"
)

// TemplateHash names a DaemonSet's pod template: a hash of the template
// (and the collision count), rendered in Kubernetes' safe alphabet.
func TemplateHash(ds *corralpb.DaemonSet) string {
	data, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ds.GetSpec().GetTemplate())
	h := fnv.New32a()
	h.Write(data)
	if st := ds.GetStatus(); st != nil && st.CollisionCount != nil {
		cc := st.CollisionCount
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(*cc))
		h.Write(b[:])
	}
	return safeEncode(h.Sum32())
}

// safeEncode renders v with the alphabet Kubernetes uses for generated
// names (no vowels, no confusable characters).
func safeEncode(v uint32) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	s := fmt.Sprintf("%d", v)
	out := make([]byte, len(s))
	for i := range s {
		out[i] = alphabet[(int(s[i])+i*7)%len(alphabet)]
	}
	return string(out)
}

// daemonTolerations are the tolerations Kubernetes adds to every DaemonSet
// pod, so that node problems do not evict node-level services.
func daemonTolerations(hostNetwork bool) []*corralpb.Toleration {
	out := []*corralpb.Toleration{
		{Key: TaintNotReady, Operator: "Exists", Effect: EffectNoExecute},
		{Key: TaintUnreachable, Operator: "Exists", Effect: EffectNoExecute},
		{Key: taintDiskPressure, Operator: "Exists", Effect: EffectNoSchedule},
		{Key: taintMemoryPressure, Operator: "Exists", Effect: EffectNoSchedule},
		{Key: taintPIDPressure, Operator: "Exists", Effect: EffectNoSchedule},
		{Key: TaintUnschedulable, Operator: "Exists", Effect: EffectNoSchedule},
	}
	if hostNetwork {
		out = append(out, &corralpb.Toleration{Key: taintNetworkUnavailable, Operator: "Exists", Effect: EffectNoSchedule})
	}
	return out
}

// withDaemonTolerations returns the template's tolerations plus those every
// DaemonSet pod gets, without duplicates.
func withDaemonTolerations(spec *corralpb.PodSpec) []*corralpb.Toleration {
	out := append([]*corralpb.Toleration(nil), spec.GetTolerations()...)
	for _, t := range daemonTolerations(spec.GetHostNetwork()) {
		dup := false
		for _, have := range out {
			dup = dup || (have.GetKey() == t.GetKey() && have.GetEffect() == t.GetEffect() && have.GetOperator() == t.GetOperator())
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

// NewDaemonPod is the pod a DaemonSet runs on node: its template, labelled
// with the template's hash and generation, owned by the DaemonSet, bound to
// the node (spec.nodeName, and the matchFields metadata.name affinity term
// Kubernetes adds), with the DaemonSet tolerations. Name, uid and
// timestamps are the caller's.
func NewDaemonPod(ds *corralpb.DaemonSet, node, hash string) *corralpb.Pod {
	tpl := ds.GetSpec().GetTemplate()
	spec := proto.Clone(tpl.GetSpec()).(*corralpb.PodSpec)
	spec.NodeName = node
	spec.Tolerations = withDaemonTolerations(spec)
	spec.Affinity = daemonAffinity(tpl.GetSpec().GetAffinity(), node)
	labels := map[string]string{}
	for k, v := range tpl.GetMetadata().GetLabels() {
		labels[k] = v
	}
	labels[LabelRevisionHash] = hash
	labels[LabelTemplateGeneration] = fmt.Sprint(ds.GetMetadata().GetGeneration())
	annotations := map[string]string{}
	for k, v := range tpl.GetMetadata().GetAnnotations() {
		annotations[k] = v
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	yes := true
	m := ds.GetMetadata()
	return &corralpb.Pod{
		ApiVersion: "v1", Kind: "Pod",
		Metadata: &corralpb.ObjectMeta{
			GenerateName: m.GetName() + "-", Namespace: m.GetNamespace(), Labels: labels, Annotations: annotations,
			OwnerReferences: []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: m.GetName(),
				Uid: m.GetUid(), Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: spec,
	}
}

// daemonAffinity is the template's affinity (a copy) with the required
// node affinity Kubernetes gives a DaemonSet's pod: the matchFields
// metadata.name term that binds it to node.
func daemonAffinity(tpl *corralpb.Affinity, node string) *corralpb.Affinity {
	a := &corralpb.Affinity{}
	if tpl != nil {
		a = proto.Clone(tpl).(*corralpb.Affinity)
	}
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corralpb.NodeAffinity{}
	}
	a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corralpb.NodeSelector{
		NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchFields: []*corralpb.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: "In", Values: []string{node}},
		}}},
	}
	return a
}

// controllerOf returns the uid of the object that controls o, if any.
func controllerOf(m *corralpb.ObjectMeta) (kind, uid string) {
	for _, r := range m.GetOwnerReferences() {
		if r.GetController() {
			return r.GetKind(), r.GetUid()
		}
	}
	return "", ""
}
