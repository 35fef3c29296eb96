package scheduler

import (
	"fmt"
	"sort"

	corralpb "github.com/corral-dev/corral/proto"
)

// The built-in priority classes Kubernetes' API server creates, and their
// values.
const (
	PriorityClassNodeCritical    = "system-node-critical"
	PriorityClassClusterCritical = "system-cluster-critical"

	priorityNodeCritical    int32 = 2000001000
	priorityClusterCritical int32 = 2000000000
)

// Preemption policies of priority classes and pods.
const (
	PreemptLowerPriority = "PreemptLowerPriority"
	PreemptNever         = "Never"
)

// priorities resolves priority class names: the built-in classes, the
// PriorityClass objects, and the globalDefault class for pods that name
// none.
type priorities struct {
	classes map[string]*corralpb.PriorityClass
	// def is the globalDefault class; nil when there is none.
	def *corralpb.PriorityClass
}

// admitted is what priority admission decides for a pod spec.
type admitted struct {
	className string
	value     int32
	policy    string
}

func newPriorities(pcs []*corralpb.PriorityClass) *priorities {
	p := &priorities{classes: map[string]*corralpb.PriorityClass{}}
	for name, v := range map[string]int32{PriorityClassNodeCritical: priorityNodeCritical, PriorityClassClusterCritical: priorityClusterCritical} {
		p.classes[name] = &corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: name}, Value: v}
	}
	sorted := append([]*corralpb.PriorityClass(nil), pcs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetMetadata().GetName() < sorted[j].GetMetadata().GetName() })
	for _, pc := range sorted {
		p.classes[pc.GetMetadata().GetName()] = pc
		// Should two classes claim globalDefault, the lower value wins, as
		// in Kubernetes.
		if pc.GetGlobalDefault() && (p.def == nil || pc.GetValue() < p.def.GetValue()) {
			p.def = pc
		}
	}
	return p
}

// admit resolves spec's priority as Kubernetes' Priority admission plugin
// does: the named class's value and preemption policy, the globalDefault
// class when no name is given, else priority 0. A class that does not
// exist, or a spec whose priority or preemptionPolicy contradicts its
// class, is refused with the plugin's message.
func (p *priorities) admit(spec *corralpb.PodSpec) (admitted, error) {
	out := admitted{policy: PreemptLowerPriority}
	pc := p.classOf(spec)
	if name := spec.GetPriorityClassName(); name != "" && pc == nil {
		return out, fmt.Errorf("no PriorityClass with name %s was found", name)
	}
	if pc != nil {
		out.className, out.value = pc.GetMetadata().GetName(), pc.GetValue()
		if pc.PreemptionPolicy != nil {
			out.policy = pc.GetPreemptionPolicy()
		}
	}
	if spec.Priority != nil && spec.GetPriority() != out.value {
		return out, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", spec.GetPriority(), out.value)
	}
	if spec.PreemptionPolicy != nil && spec.GetPreemptionPolicy() != out.policy {
		return out, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", spec.GetPreemptionPolicy(), out.policy)
	}
	return out, nil
}

// apply writes the admitted class, priority and policy into spec.
func (a admitted) apply(spec *corralpb.PodSpec) {
	spec.PriorityClassName = a.className
	v, policy := a.value, a.policy
	spec.Priority = &v
	spec.PreemptionPolicy = &policy
}

// classOf is the class a pod spec's priority comes from: the one it names,
// or the globalDefault class when it names none; nil when there is none.
func (p *priorities) classOf(spec *corralpb.PodSpec) *corralpb.PriorityClass {
	if name := spec.GetPriorityClassName(); name != "" {
		return p.classes[name]
	}
	return p.def
}

// of is a pod's priority: spec.priority when admission set it; otherwise
// (pods applied without admission) the value its class resolves to, and 0
// for a class that does not exist.
func (p *priorities) of(pod *corralpb.Pod) int32 {
	if pod.GetSpec().Priority != nil {
		return pod.GetSpec().GetPriority()
	}
	return p.classOf(pod.GetSpec()).GetValue()
}

// preempts reports whether a pod may preempt others: its preemptionPolicy
// (or its class's) is not Never.
func (p *priorities) preempts(pod *corralpb.Pod) bool {
	if pod.GetSpec().PreemptionPolicy != nil {
		return pod.GetSpec().GetPreemptionPolicy() != PreemptNever
	}
	return p.classOf(pod.GetSpec()).GetPreemptionPolicy() != PreemptNever
}
