package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

// validateDaemonSetSpec checks a DaemonSet's spec at path ("spec").
func validateDaemonSetSpec(spec *corralpb.DaemonSetSpec, path *field.Path) field.ErrorList {
	if spec == nil {
		spec = &corralpb.DaemonSetSpec{}
	}
	var errs field.ErrorList
	sel := spec.Selector
	switch {
	case sel == nil:
		errs = append(errs, field.Required(path.Child("selector"), ""))
	case len(sel.MatchLabels)+len(sel.MatchExpressions) == 0:
		errs = append(errs, field.Invalid(path.Child("selector"), badValue(sel), "empty selector is invalid for daemonset"))
	default:
		errs = append(errs, validateLabelSelector(sel, path.Child("selector"))...)
	}
	tmplPath := path.Child("template")
	tmplLabels := spec.GetTemplate().GetMetadata().GetLabels()
	if s, err := LabelSelectorAsSelector(sel); sel != nil && err == nil && !s.Empty() && !s.Matches(labels.Set(tmplLabels)) {
		errs = append(errs, field.Invalid(tmplPath.Child("metadata", "labels"), tmplLabels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validateTemplateMeta(spec.GetTemplate().GetMetadata(), tmplPath.Child("metadata"))...)
	podPath := tmplPath.Child("spec")
	errs = append(errs, validatePodSpec(spec.GetTemplate().GetSpec(), podPath, []string{"Always"})...)
	if ps := spec.GetTemplate().GetSpec(); ps != nil && ps.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(podPath.Child("activeDeadlineSeconds"), "activeDeadlineSeconds in DaemonSet is not Supported"))
	}
	errs = append(errs, validateDaemonSetUpdateStrategy(spec.UpdateStrategy, path.Child("updateStrategy"))...)
	errs = append(errs, nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, nonNegative(path.Child("revisionHistoryLimit"), *spec.RevisionHistoryLimit)...)
	}
	return errs
}

// validateTemplateMeta checks what a pod template's metadata may carry.
func validateTemplateMeta(md *corralpb.ObjectMeta, path *field.Path) field.ErrorList {
	errs := validateLabels(md.GetLabels(), path.Child("labels"))
	return append(errs, validateAnnotations(md.GetAnnotations(), path.Child("annotations"))...)
}

func validateDaemonSetUpdateStrategy(us *corralpb.DaemonSetUpdateStrategy, path *field.Path) field.ErrorList {
	if us == nil {
		return nil
	}
	errs := supported(path.Child("type"), us.Type, true, "RollingUpdate", "OnDelete")
	if (us.Type == "" || us.Type == "RollingUpdate") && us.RollingUpdate != nil {
		errs = append(errs, validateRollingUpdate(us.RollingUpdate, path.Child("rollingUpdate"))...)
	}
	return errs
}

// validateRollingUpdate checks maxUnavailable and maxSurge: each a
// non-negative int or a percentage up to 100%, and not both zero. An unset
// value counts as its default (maxUnavailable 1, maxSurge 0).
func validateRollingUpdate(ru *corralpb.RollingUpdateDaemonSet, path *field.Path) field.ErrorList {
	unavailPath, surgePath := path.Child("maxUnavailable"), path.Child("maxSurge")
	errs := validateIntOrPercent(ru.MaxUnavailable, unavailPath)
	errs = append(errs, validateIntOrPercent(ru.MaxSurge, surgePath)...)
	if len(errs) > 0 {
		return errs
	}
	unavail, surge := int64(1), int64(0)
	if ru.MaxUnavailable != nil {
		unavail = intOrPercentValue(ru.MaxUnavailable)
	}
	if ru.MaxSurge != nil {
		surge = intOrPercentValue(ru.MaxSurge)
	}
	if unavail == 0 && surge == 0 {
		errs = append(errs, field.Invalid(unavailPath, badIntOrString(ru.MaxUnavailable), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

// validateIntOrPercent checks an int-or-percent value; nil is fine.
func validateIntOrPercent(v *corralpb.IntOrString, path *field.Path) field.ErrorList {
	switch {
	case v == nil:
		return nil
	case v.IsString:
		if msgs := validation.IsValidPercent(v.StrVal); len(msgs) > 0 {
			return invalidEach(path, v.StrVal, msgs)
		}
		if intOrPercentValue(v) > 100 {
			return field.ErrorList{field.Invalid(path, v.StrVal, "must not be greater than 100%")}
		}
	case v.IntVal < 0:
		return field.ErrorList{field.Invalid(path, int64(v.IntVal), nonNegativeMsg)}
	}
	return nil
}

// intOrPercentValue returns the number of a valid int-or-percent value.
func intOrPercentValue(v *corralpb.IntOrString) int64 {
	if !v.IsString {
		return int64(v.IntVal)
	}
	var n int64
	for _, c := range strings.TrimSuffix(v.StrVal, "%") {
		n = n*10 + int64(c-'0')
		if n > 1000 {
			return n
		}
	}
	return n
}

// badIntOrString renders an IntOrString as an error's bad value.
func badIntOrString(v *corralpb.IntOrString) any {
	if v == nil {
		return int64(1)
	}
	if v.IsString {
		return v.StrVal
	}
	return int64(v.IntVal)
}

// validateLabelSelector checks matchLabels and matchExpressions.
func validateLabelSelector(sel *corralpb.LabelSelector, path *field.Path) field.ErrorList {
	errs := validateLabels(sel.MatchLabels, path.Child("matchLabels"))
	for i, r := range sel.MatchExpressions {
		p := path.Child("matchExpressions").Index(i)
		switch r.GetOperator() {
		case "In", "NotIn":
			if len(r.GetValues()) == 0 {
				errs = append(errs, field.Required(p.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case "Exists", "DoesNotExist":
			if len(r.GetValues()) > 0 {
				errs = append(errs, field.Forbidden(p.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		default:
			errs = append(errs, field.Invalid(p.Child("operator"), r.GetOperator(), "not a valid selector operator"))
		}
		errs = append(errs, invalidEach(p.Child("key"), r.GetKey(), validation.IsQualifiedName(r.GetKey()))...)
		for j, v := range r.GetValues() {
			errs = append(errs, invalidEach(p.Child("values").Index(j), v, validation.IsValidLabelValue(v))...)
		}
	}
	return errs
}

// badValue renders a message as an error's bad value: its Kubernetes JSON.
func badValue(m proto.Message) any {
	tree, err := messageTree(m.ProtoReflect())
	if err != nil {
		return fmt.Sprint(m)
	}
	return tree
}

func validateDaemonSetUpdate(newDS, oldDS *corralpb.DaemonSet) field.ErrorList {
	newSel, oldSel := newDS.GetSpec().GetSelector(), oldDS.GetSpec().GetSelector()
	if !proto.Equal(newSel, oldSel) {
		var bad any = "null"
		if newSel != nil {
			bad = badValue(newSel)
		}
		return field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), bad, immutableMsg)}
	}
	return nil
}

func validateNode(n *corralpb.Node) field.ErrorList {
	spec := n.GetSpec()
	path := field.NewPath("spec")
	var errs field.ErrorList
	for i, c := range append([]string{spec.GetPodCidr()}, spec.GetPodCidrs()...) {
		if c == "" {
			continue
		}
		if _, err := netip.ParsePrefix(c); err != nil {
			p := path.Child("podCIDR")
			if i > 0 {
				p = path.Child("podCIDRs").Index(i - 1)
			}
			errs = append(errs, field.Invalid(p, c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
		}
	}
	return append(errs, validateTaints(spec.GetTaints(), path.Child("taints"))...)
}

// validateTaints checks taints' keys, values and effects, and that no two
// share key and effect.
func validateTaints(taints []*corralpb.Taint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, t := range taints {
		p := path.Index(i)
		if t.GetKey() == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(p.Child("key"), t.GetKey(), validation.IsQualifiedName(t.GetKey()))...)
		}
		errs = append(errs, invalidEach(p.Child("value"), t.GetValue(), validation.IsValidLabelValue(t.GetValue()))...)
		errs = append(errs, supported(p.Child("effect"), t.GetEffect(), false, taintEffects...)...)
		id := t.GetKey() + ":" + t.GetEffect()
		if seen[id] {
			d := field.Duplicate(p, id)
			d.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, d)
		}
		seen[id] = true
	}
	return errs
}

// maxConfigMapSize is the largest total size of a ConfigMap's data.
const maxConfigMapSize = 1024 * 1024

func validateConfigMap(cm *corralpb.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		errs = append(errs, invalidEach(field.NewPath("data").Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(k) + len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		p := field.NewPath("binaryData").Key(k)
		errs = append(errs, invalidEach(p, k, validation.IsConfigMapKey(k))...)
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, "duplicate of key present in binaryData"))
		}
		size += len(k) + len(cm.BinaryData[k])
	}
	if size > maxConfigMapSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", maxConfigMapSize))
	}
	return errs
}

// validateNodeUpdate allows a node's pod CIDR to be set once, as
// Kubernetes does: the pod network is built on it.
func validateNodeUpdate(newNode, oldNode *corralpb.Node) field.ErrorList {
	old := oldNode.GetSpec()
	if old.GetPodCidr() == "" {
		return nil
	}
	const msg = `node updates may not change podCIDR except from "" to valid`
	var errs field.ErrorList
	if newNode.GetSpec().GetPodCidr() != old.GetPodCidr() {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDR"), msg))
	}
	if !slices.Equal(newNode.GetSpec().GetPodCidrs(), old.GetPodCidrs()) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), msg))
	}
	return errs
}

// podSpecUpdateMsg refuses a change to a pod's spec. Kubernetes lets an
// update change a few of its fields (containers' images, tolerations added,
// activeDeadlineSeconds) and the kubelet acts on them; corral's agent runs
// a pod as it was created, so a changed spec would be stored and never run.
const podSpecUpdateMsg = "pod updates may not change the spec: corral runs a pod as it was created; " +
	"delete the pod and create it anew (a DaemonSet replaces its own pods when its template changes)"

func validatePodUpdate(newPod, oldPod *corralpb.Pod) field.ErrorList {
	if proto.Equal(newPod.GetSpec(), oldPod.GetSpec()) {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("spec"), podSpecUpdateMsg)}
}

func validateConfigMapUpdate(newCM, oldCM *corralpb.ConfigMap) field.ErrorList {
	if !oldCM.GetImmutable() {
		return nil
	}
	var errs field.ErrorList
	const msg = "field is immutable when `immutable` is set"
	if !newCM.GetImmutable() {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	if !proto.Equal(&corralpb.ConfigMap{Data: newCM.Data}, &corralpb.ConfigMap{Data: oldCM.Data}) {
		errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
	}
	if !proto.Equal(&corralpb.ConfigMap{BinaryData: newCM.BinaryData}, &corralpb.ConfigMap{BinaryData: oldCM.BinaryData}) {
		errs = append(errs, field.Forbidden(field.NewPath("binaryData"), msg))
	}
	return errs
}

func validateNamespace(ns *corralpb.Namespace) field.ErrorList {
	var errs field.ErrorList
	for i, f := range ns.GetSpec().GetFinalizers() {
		p := field.NewPath("spec", "finalizers").Index(i)
		errs = append(errs, invalidEach(p, f, validation.IsQualifiedName(f))...)
	}
	if ph := ns.GetStatus().GetPhase(); ph != "" {
		errs = append(errs, supported(field.NewPath("status", "phase"), ph, false, "Active", "Terminating")...)
	}
	return errs
}

// Priority classes: user-defined values stop at highestUserPriority; the
// system- prefix belongs to the built-in classes.
const highestUserPriority = 1000000000

// systemPriorityClasses are the built-in classes and their values.
var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2000001000,
	"system-cluster-critical": 2000000000,
}

func validatePriorityClass(pc *corralpb.PriorityClass) field.ErrorList {
	var errs field.ErrorList
	name := pc.GetMetadata().GetName()
	if strings.HasPrefix(name, "system-") {
		if v, ok := systemPriorityClasses[name]; !ok {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"), "priority class names with 'system-' prefix are reserved"))
		} else if pc.Value != v {
			errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("value of %s must be %d", name, v)))
		}
	} else if pc.Value > highestUserPriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %d", highestUserPriority)))
	}
	if pc.PreemptionPolicy != nil {
		errs = append(errs, supported(field.NewPath("preemptionPolicy"), *pc.PreemptionPolicy, false, "PreemptLowerPriority", "Never")...)
	}
	return errs
}

func validateEvent(ev *corralpb.Event) field.ErrorList {
	errs := supported(field.NewPath("type"), ev.GetType(), true, "Normal", "Warning")
	if ev.GetCount() < 0 {
		errs = append(errs, field.Invalid(field.NewPath("count"), int64(ev.GetCount()), nonNegativeMsg))
	}
	return errs
}

func validateControllerRevision(cr *corralpb.ControllerRevision) field.ErrorList {
	errs := nonNegative(field.NewPath("revision"), cr.GetRevision())
	if raw := cr.GetData().GetRaw(); len(raw) > 0 && !json.Valid(raw) {
		errs = append(errs, field.Invalid(field.NewPath("data"), "<value omitted>", "must be valid JSON"))
	}
	return errs
}
