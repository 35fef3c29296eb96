package api

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

const baseDaemonSetYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: kube-system
  labels: {app: agent}
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: agent:1.0
        ports:
        - {name: http, containerPort: 8080}
        resources:
          limits: {memory: 200Mi}
          requests: {cpu: 100m, memory: 100Mi}
        volumeMounts:
        - {name: logs, mountPath: /var/log}
        livenessProbe:
          httpGet: {port: 8080}
      volumes:
      - name: logs
        hostPath: {path: /var/log}
`

// baseDaemonSet returns a valid, defaulted DaemonSet for validation rows.
func baseDaemonSet(t *testing.T) *corralpb.Object {
	t.Helper()
	o := decodeOne(t, baseDaemonSetYAML)
	SetDefaults(o)
	if err := Validate(o); err != nil {
		t.Fatalf("base DaemonSet does not validate: %v", err)
	}
	return o
}

// rule is one validation row: a change to a valid object and the error it
// must cause (none when field is "").
type rule struct {
	name   string
	mutate func(o *corralpb.Object)
	field  string
	typ    field.ErrorType
	detail string // a substring of the error's text, optional
}

// checkRule applies the row's change to base and checks the validation
// result: the wanted error must be present with its path and type.
func checkRule(t *testing.T, base *corralpb.Object, r rule, validate func(*corralpb.Object) error) {
	t.Helper()
	o := proto.Clone(base).(*corralpb.Object)
	r.mutate(o)
	err := validate(o)
	if r.field == "" {
		if err != nil {
			t.Errorf("%s: want valid, got %v", r.name, err)
		}
		return
	}
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Errorf("%s: want an *InvalidError at %s, got %v", r.name, r.field, err)
		return
	}
	for _, e := range inv.Errs {
		if e.Field == r.field && e.Type == r.typ && strings.Contains(e.Error(), r.detail) {
			return
		}
	}
	t.Errorf("%s: want %s %q (%q), got %v", r.name, r.field, r.typ, r.detail, err)
}

// Accessors for the rows.
func dsOf(o *corralpb.Object) *corralpb.DaemonSet     { return o.GetDaemonSet() }
func tmplSpec(o *corralpb.Object) *corralpb.PodSpec   { return o.GetDaemonSet().Spec.Template.Spec }
func firstCtr(o *corralpb.Object) *corralpb.Container { return tmplSpec(o).Containers[0] }
func intStr(v int32) *corralpb.IntOrString            { return &corralpb.IntOrString{IntVal: v} }
func pctStr(s string) *corralpb.IntOrString           { return &corralpb.IntOrString{IsString: true, StrVal: s} }
func strategy(o *corralpb.Object) *corralpb.RollingUpdateDaemonSet {
	return o.GetDaemonSet().Spec.UpdateStrategy.RollingUpdate
}

func TestValidateMetadata(t *testing.T) {
	base := baseDaemonSet(t)
	rules := []rule{
		{"invalid name", func(o *corralpb.Object) { Meta(o).Name = "Agent" }, "metadata.name", field.ErrorTypeInvalid, "RFC 1123 subdomain"},
		{"dotted name is a subdomain", func(o *corralpb.Object) { Meta(o).Name = "agent.v2" }, "", "", ""},
		{"missing name", func(o *corralpb.Object) { Meta(o).Name = "" }, "metadata.name", field.ErrorTypeRequired, "name or generateName is required"},
		{"generateName instead of name", func(o *corralpb.Object) { Meta(o).Name = ""; Meta(o).GenerateName = "agent-" }, "", "", ""},
		{"invalid generateName", func(o *corralpb.Object) { Meta(o).GenerateName = "Agent_" }, "metadata.generateName", field.ErrorTypeInvalid, ""},
		{"missing namespace", func(o *corralpb.Object) { Meta(o).Namespace = "" }, "metadata.namespace", field.ErrorTypeRequired, ""},
		{"invalid namespace", func(o *corralpb.Object) { Meta(o).Namespace = "kube.system" }, "metadata.namespace", field.ErrorTypeInvalid, "must not contain dots"},
		{"invalid label key", func(o *corralpb.Object) { Meta(o).Labels["bad key"] = "x" }, "metadata.labels", field.ErrorTypeInvalid, `"bad key"`},
		{"invalid label value", func(o *corralpb.Object) { Meta(o).Labels["ok"] = "-bad" }, "metadata.labels", field.ErrorTypeInvalid, `"-bad"`},
		{"prefixed label key", func(o *corralpb.Object) { Meta(o).Labels["example.com/tier"] = "a" }, "", "", ""},
		{"invalid annotation key", func(o *corralpb.Object) { Meta(o).Annotations = map[string]string{"a/b/c": "x"} }, "metadata.annotations", field.ErrorTypeInvalid, ""},
		{"annotation key case ignored", func(o *corralpb.Object) { Meta(o).Annotations = map[string]string{"Example.com/Note": "x"} }, "", "", ""},
		{"annotations too large", func(o *corralpb.Object) { Meta(o).Annotations = map[string]string{"a": strings.Repeat("x", 256*1024)} },
			"metadata.annotations", field.ErrorTypeTooLong, ""},
		{"negative generation", func(o *corralpb.Object) { Meta(o).Generation = -1 }, "metadata.generation", field.ErrorTypeInvalid, ""},
		{"owner reference without uid", func(o *corralpb.Object) {
			Meta(o).OwnerReferences = []*corralpb.OwnerReference{{ApiVersion: "v1", Kind: "Node", Name: "n"}}
		}, "metadata.ownerReferences[0].uid", field.ErrorTypeRequired, ""},
		{"invalid finalizer", func(o *corralpb.Object) { Meta(o).Finalizers = []string{"a b"} }, "metadata.finalizers", field.ErrorTypeInvalid, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateDaemonSet(t *testing.T) {
	base := baseDaemonSet(t)
	rules := []rule{
		{"selector required", func(o *corralpb.Object) { dsOf(o).Spec.Selector = nil }, "spec.selector", field.ErrorTypeRequired, ""},
		{"empty selector", func(o *corralpb.Object) { dsOf(o).Spec.Selector = &corralpb.LabelSelector{} },
			"spec.selector", field.ErrorTypeInvalid, "empty selector is invalid for daemonset"},
		{"selector does not match", func(o *corralpb.Object) { dsOf(o).Spec.Selector.MatchLabels["app"] = "other" },
			"spec.template.metadata.labels", field.ErrorTypeInvalid, "`selector` does not match template `labels`"},
		{"expression selector matches", func(o *corralpb.Object) {
			dsOf(o).Spec.Selector = &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"agent", "x"}}}}
		}, "", "", ""},
		{"selector bad operator", func(o *corralpb.Object) {
			dsOf(o).Spec.Selector.MatchExpressions = []*corralpb.LabelSelectorRequirement{{Key: "app", Operator: "Equals", Values: []string{"agent"}}}
		}, "spec.selector.matchExpressions[0].operator", field.ErrorTypeInvalid, "not a valid selector operator"},
		{"selector In needs values", func(o *corralpb.Object) {
			dsOf(o).Spec.Selector.MatchExpressions = []*corralpb.LabelSelectorRequirement{{Key: "app", Operator: "In"}}
		}, "spec.selector.matchExpressions[0].values", field.ErrorTypeRequired, ""},
		{"selector Exists takes no values", func(o *corralpb.Object) {
			dsOf(o).Spec.Selector.MatchExpressions = []*corralpb.LabelSelectorRequirement{{Key: "app", Operator: "Exists", Values: []string{"x"}}}
		}, "spec.selector.matchExpressions[0].values", field.ErrorTypeForbidden, ""},
		{"selector label syntax", func(o *corralpb.Object) { dsOf(o).Spec.Selector.MatchLabels["a b"] = "c" },
			"spec.selector.matchLabels", field.ErrorTypeInvalid, ""},
		{"template label syntax", func(o *corralpb.Object) { dsOf(o).Spec.Template.Metadata.Labels["x"] = "a b" },
			"spec.template.metadata.labels", field.ErrorTypeInvalid, ""},
		{"restartPolicy must be Always", func(o *corralpb.Object) { tmplSpec(o).RestartPolicy = "OnFailure" },
			"spec.template.spec.restartPolicy", field.ErrorTypeNotSupported, `supported values: "Always"`},
		{"activeDeadlineSeconds forbidden", func(o *corralpb.Object) { tmplSpec(o).ActiveDeadlineSeconds = proto.Int64(10) },
			"spec.template.spec.activeDeadlineSeconds", field.ErrorTypeForbidden, ""},
		{"template spec required", func(o *corralpb.Object) { dsOf(o).Spec.Template.Spec = nil },
			"spec.template.spec.containers", field.ErrorTypeRequired, ""},
		{"unknown strategy", func(o *corralpb.Object) { dsOf(o).Spec.UpdateStrategy.Type = "Recreate" },
			"spec.updateStrategy.type", field.ErrorTypeNotSupported, `supported values: "RollingUpdate", "OnDelete"`},
		{"OnDelete", func(o *corralpb.Object) {
			dsOf(o).Spec.UpdateStrategy = &corralpb.DaemonSetUpdateStrategy{Type: "OnDelete"}
		}, "", "", ""},
		{"maxUnavailable not a percent", func(o *corralpb.Object) { strategy(o).MaxUnavailable = pctStr("abc") },
			"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "a valid percent string"},
		{"maxUnavailable over 100%", func(o *corralpb.Object) { strategy(o).MaxUnavailable = pctStr("150%") },
			"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "must not be greater than 100%"},
		{"maxUnavailable negative", func(o *corralpb.Object) { strategy(o).MaxUnavailable = intStr(-1) },
			"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "must be greater than or equal to 0"},
		{"maxSurge negative", func(o *corralpb.Object) { strategy(o).MaxSurge = intStr(-2) },
			"spec.updateStrategy.rollingUpdate.maxSurge", field.ErrorTypeInvalid, ""},
		{"both zero", func(o *corralpb.Object) { strategy(o).MaxUnavailable = intStr(0) },
			"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "cannot be 0 when maxSurge is 0"},
		{"both zero percent", func(o *corralpb.Object) {
			strategy(o).MaxUnavailable = pctStr("0%")
			strategy(o).MaxSurge = pctStr("0%")
		},
			"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "cannot be 0 when maxSurge is 0"},
		{"surge instead of unavailability", func(o *corralpb.Object) { strategy(o).MaxUnavailable = intStr(0); strategy(o).MaxSurge = pctStr("25%") }, "", "", ""},
		{"both non-zero", func(o *corralpb.Object) {
			strategy(o).MaxUnavailable = pctStr("100%")
			strategy(o).MaxSurge = intStr(1)
		}, "", "", ""},
		{"negative minReadySeconds", func(o *corralpb.Object) { dsOf(o).Spec.MinReadySeconds = -1 },
			"spec.minReadySeconds", field.ErrorTypeInvalid, ""},
		{"negative revisionHistoryLimit", func(o *corralpb.Object) { dsOf(o).Spec.RevisionHistoryLimit = proto.Int32(-1) },
			"spec.revisionHistoryLimit", field.ErrorTypeInvalid, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateAcceptsUndefaulted(t *testing.T) {
	o := decodeOne(t, baseDaemonSetYAML)
	if err := Validate(o); err != nil {
		t.Errorf("an undefaulted DaemonSet should validate: %v", err)
	}
}

func TestInvalidErrorText(t *testing.T) {
	base := baseDaemonSet(t)
	tests := []struct {
		name   string
		mutate func(o *corralpb.Object)
		want   string
	}{
		{"one error", func(o *corralpb.Object) { dsOf(o).Spec.Selector = nil },
			`DaemonSet.apps "agent" is invalid: spec.selector: Required value`},
		{"requests over limits", func(o *corralpb.Object) { firstCtr(o).Resources.Requests["memory"] = "300Mi" },
			`DaemonSet.apps "agent" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: "300Mi": must be less than or equal to memory limit of 200Mi`},
		{"selector mismatch", func(o *corralpb.Object) { dsOf(o).Spec.Template.Metadata.Labels["app"] = "other" },
			"DaemonSet.apps \"agent\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"},
		{"restart policy", func(o *corralpb.Object) { tmplSpec(o).RestartPolicy = "OnFailure" },
			`DaemonSet.apps "agent" is invalid: spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"`},
		{"several errors", func(o *corralpb.Object) { firstCtr(o).Image = ""; dsOf(o).Spec.MinReadySeconds = -1 },
			`DaemonSet.apps "agent" is invalid: [spec.template.spec.containers[0].image: Required value, spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0]`},
	}
	for _, tt := range tests {
		o := proto.Clone(base).(*corralpb.Object)
		tt.mutate(o)
		err := Validate(o)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
	pc := Wrap(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "x"}, Value: 2000000000})
	if err := Validate(pc); err == nil || !strings.HasPrefix(err.Error(), `PriorityClass.scheduling.k8s.io "x" is invalid: value: Forbidden`) {
		t.Errorf("priority class: %v", err)
	}
	if err := Validate(&corralpb.Object{}); !errors.Is(err, ErrEmptyObject) {
		t.Errorf("empty object: %v", err)
	}
}

func TestValidateOtherKinds(t *testing.T) {
	node := Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "node-1"}, Spec: &corralpb.NodeSpec{
		Taints: []*corralpb.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}},
	}})
	taints := func(o *corralpb.Object) *corralpb.NodeSpec { return o.GetNode().Spec }
	cm := Wrap(&corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"a.conf": "x"}})
	ns := Wrap(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "monitoring"}})
	pc := Wrap(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000})
	ev := Wrap(&corralpb.Event{Metadata: &corralpb.ObjectMeta{Name: "e", Namespace: "default"}, Type: "Normal"})
	cr := Wrap(&corralpb.ControllerRevision{Metadata: &corralpb.ObjectMeta{Name: "r", Namespace: "default"}, Revision: 1,
		Data: &corralpb.RawExtension{Raw: []byte(`{}`)}})
	tests := []struct {
		base  *corralpb.Object
		rules []rule
	}{
		{node, []rule{
			{"valid node", func(o *corralpb.Object) {}, "", "", ""},
			{"node namespace", func(o *corralpb.Object) { Meta(o).Namespace = "default" }, "metadata.namespace", field.ErrorTypeForbidden, "not allowed on this type"},
			{"taint effect required", func(o *corralpb.Object) { taints(o).Taints[0].Effect = "" }, "spec.taints[0].effect", field.ErrorTypeRequired, ""},
			{"taint effect", func(o *corralpb.Object) { taints(o).Taints[0].Effect = "NoRun" }, "spec.taints[0].effect", field.ErrorTypeNotSupported, ""},
			{"taint key", func(o *corralpb.Object) { taints(o).Taints[0].Key = "a b" }, "spec.taints[0].key", field.ErrorTypeInvalid, ""},
			{"taint key required", func(o *corralpb.Object) { taints(o).Taints[0].Key = "" }, "spec.taints[0].key", field.ErrorTypeRequired, ""},
			{"taint value", func(o *corralpb.Object) { taints(o).Taints[0].Value = "a b" }, "spec.taints[0].value", field.ErrorTypeInvalid, ""},
			{"duplicate taint", func(o *corralpb.Object) {
				taints(o).Taints = append(taints(o).Taints, &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Value: "x", Effect: "NoSchedule"})
			}, "spec.taints[1]", field.ErrorTypeDuplicate, "taints must be unique by key and effect pair"},
			{"same key, other effect", func(o *corralpb.Object) {
				taints(o).Taints = append(taints(o).Taints, &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoExecute"})
			}, "", "", ""},
			{"pod CIDR", func(o *corralpb.Object) { taints(o).PodCidr = "10.0.0.0/33" }, "spec.podCIDR", field.ErrorTypeInvalid, ""},
		}},
		{cm, []rule{
			{"valid configmap", func(o *corralpb.Object) {}, "", "", ""},
			{"configmap key", func(o *corralpb.Object) { o.GetConfigMap().Data["a b"] = "x" }, "data[a b]", field.ErrorTypeInvalid, "a valid config key"},
			{"binaryData key", func(o *corralpb.Object) { o.GetConfigMap().BinaryData = map[string][]byte{"../x": nil} }, "binaryData[../x]", field.ErrorTypeInvalid, ""},
			{"data and binaryData overlap", func(o *corralpb.Object) { o.GetConfigMap().BinaryData = map[string][]byte{"a.conf": {1}} },
				"data[a.conf]", field.ErrorTypeInvalid, "duplicate of key present in binaryData"},
			{"configmap too large", func(o *corralpb.Object) { o.GetConfigMap().Data["big"] = strings.Repeat("x", 1024*1024) },
				"data", field.ErrorTypeTooLong, ""},
			{"configmap name", func(o *corralpb.Object) { Meta(o).Name = "Cfg" }, "metadata.name", field.ErrorTypeInvalid, ""},
		}},
		{ns, []rule{
			{"valid namespace", func(o *corralpb.Object) { SetDefaults(o) }, "", "", ""},
			{"namespace name is a label", func(o *corralpb.Object) { Meta(o).Name = "a.b" }, "metadata.name", field.ErrorTypeInvalid, "must not contain dots"},
			{"namespace finalizer", func(o *corralpb.Object) { o.GetNamespace().Spec = &corralpb.NamespaceSpec{Finalizers: []string{"a b"}} },
				"spec.finalizers[0]", field.ErrorTypeInvalid, ""},
		}},
		{pc, []rule{
			{"valid priority class", func(o *corralpb.Object) { SetDefaults(o) }, "", "", ""},
			{"user priority too high", func(o *corralpb.Object) { o.GetPriorityClass().Value = 1000000001 }, "value", field.ErrorTypeForbidden, "1000000000"},
			{"user priority at limit", func(o *corralpb.Object) { o.GetPriorityClass().Value = 1000000000 }, "", "", ""},
			{"system class", func(o *corralpb.Object) {
				Meta(o).Name = "system-node-critical"
				o.GetPriorityClass().Value = 2000001000
			}, "", "", ""},
			{"system class value", func(o *corralpb.Object) { Meta(o).Name = "system-node-critical" }, "value", field.ErrorTypeForbidden, ""},
			{"reserved prefix", func(o *corralpb.Object) { Meta(o).Name = "system-mine" }, "metadata.name", field.ErrorTypeForbidden, "reserved"},
			{"preemption policy", func(o *corralpb.Object) { o.GetPriorityClass().PreemptionPolicy = proto.String("Always") }, "preemptionPolicy", field.ErrorTypeNotSupported, ""},
		}},
		{ev, []rule{
			{"valid event", func(o *corralpb.Object) {}, "", "", ""},
			{"event type", func(o *corralpb.Object) { o.GetEvent().Type = "Info" }, "type", field.ErrorTypeNotSupported, ""},
		}},
		{cr, []rule{
			{"valid revision", func(o *corralpb.Object) {}, "", "", ""},
			{"negative revision", func(o *corralpb.Object) { o.GetControllerRevision().Revision = -1 }, "revision", field.ErrorTypeInvalid, ""},
		}},
	}
	for _, tt := range tests {
		for _, r := range tt.rules {
			checkRule(t, tt.base, r, Validate)
		}
	}
}

func TestValidateUpdate(t *testing.T) {
	old := baseDaemonSet(t)
	Meta(old).Uid = "uid-1"
	update := func(newObj *corralpb.Object) error { return ValidateUpdate(newObj, old) }
	rules := []rule{
		{"no change", func(o *corralpb.Object) {}, "", "", ""},
		{"template change", func(o *corralpb.Object) { firstCtr(o).Image = "agent:2.0" }, "", "", ""},
		{"uid left empty", func(o *corralpb.Object) { Meta(o).Uid = "" }, "", "", ""},
		{"selector immutable", func(o *corralpb.Object) {
			dsOf(o).Spec.Selector.MatchLabels["tier"] = "x"
			dsOf(o).Spec.Template.Metadata.Labels["tier"] = "x"
		}, "spec.selector", field.ErrorTypeInvalid, "field is immutable"},
		{"name immutable", func(o *corralpb.Object) { Meta(o).Name = "agent2" }, "metadata.name", field.ErrorTypeInvalid, "field is immutable"},
		{"namespace immutable", func(o *corralpb.Object) { Meta(o).Namespace = "default" }, "metadata.namespace", field.ErrorTypeInvalid, "field is immutable"},
		{"uid immutable", func(o *corralpb.Object) { Meta(o).Uid = "uid-2" }, "metadata.uid", field.ErrorTypeInvalid, "field is immutable"},
		{"still validates", func(o *corralpb.Object) { firstCtr(o).Image = "" }, "spec.template.spec.containers[0].image", field.ErrorTypeRequired, ""},
	}
	for _, r := range rules {
		checkRule(t, old, r, update)
	}

	oldCM := Wrap(&corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"a": "1"}})
	cmUpdate := func(newObj *corralpb.Object) error { return ValidateUpdate(newObj, oldCM) }
	checkRule(t, oldCM, rule{"mutable configmap", func(o *corralpb.Object) { o.GetConfigMap().Data["a"] = "2" }, "", "", ""}, cmUpdate)
	oldCM.GetConfigMap().Immutable = proto.Bool(true)
	for _, r := range []rule{
		{"immutable unchanged", func(o *corralpb.Object) {}, "", "", ""},
		{"immutable data", func(o *corralpb.Object) { o.GetConfigMap().Data["a"] = "2" }, "data", field.ErrorTypeForbidden, "field is immutable when `immutable` is set"},
		{"immutable binaryData", func(o *corralpb.Object) { o.GetConfigMap().BinaryData = map[string][]byte{"b": {1}} }, "binaryData", field.ErrorTypeForbidden, ""},
		{"immutable flag", func(o *corralpb.Object) { o.GetConfigMap().Immutable = proto.Bool(false) }, "immutable", field.ErrorTypeForbidden, ""},
	} {
		checkRule(t, oldCM, r, cmUpdate)
	}

	oldNode := Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n1"}, Spec: &corralpb.NodeSpec{}})
	nodeUpdate := func(newObj *corralpb.Object) error { return ValidateUpdate(newObj, oldNode) }
	checkRule(t, oldNode, rule{"pod CIDR set once", func(o *corralpb.Object) {
		o.GetNode().Spec.PodCidr, o.GetNode().Spec.PodCidrs = "10.42.1.0/24", []string{"10.42.1.0/24"}
	}, "", "", ""}, nodeUpdate)
	oldNode.GetNode().Spec.PodCidr, oldNode.GetNode().Spec.PodCidrs = "10.42.1.0/24", []string{"10.42.1.0/24"}
	for _, r := range []rule{
		{"pod CIDR unchanged", func(o *corralpb.Object) {}, "", "", ""},
		{"pod CIDR changed", func(o *corralpb.Object) { o.GetNode().Spec.PodCidr = "10.42.2.0/24" }, "spec.podCIDR", field.ErrorTypeForbidden, "may not change podCIDR"},
		{"pod CIDRs changed", func(o *corralpb.Object) { o.GetNode().Spec.PodCidrs = nil }, "spec.podCIDRs", field.ErrorTypeForbidden, ""},
	} {
		checkRule(t, oldNode, r, nodeUpdate)
	}

	oldPod := Wrap(&corralpb.Pod{Metadata: &corralpb.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"app": "a"}},
		Spec: &corralpb.PodSpec{NodeName: "n1", Containers: []*corralpb.Container{{Name: "c", Image: "nginx:1.25"}}}})
	podUpdate := func(newObj *corralpb.Object) error { return ValidateUpdate(newObj, oldPod) }
	for _, r := range []rule{
		{"pod metadata changed", func(o *corralpb.Object) {
			Meta(o).Labels["app"] = "b"
			Meta(o).Annotations = map[string]string{"x": "y"}
		}, "", "", ""},
		{"pod image changed", func(o *corralpb.Object) { o.GetPod().Spec.Containers[0].Image = "nginx:1.26" }, "spec", field.ErrorTypeForbidden, "pod updates may not change the spec"},
		{"pod node changed", func(o *corralpb.Object) { o.GetPod().Spec.NodeName = "n2" }, "spec", field.ErrorTypeForbidden, ""},
		{"pod toleration added", func(o *corralpb.Object) {
			o.GetPod().Spec.Tolerations = []*corralpb.Toleration{{Key: "k", Operator: "Exists"}}
		}, "spec", field.ErrorTypeForbidden, ""},
	} {
		checkRule(t, oldPod, r, podUpdate)
	}

	if err := ValidateUpdate(oldCM, old); err == nil || errors.As(err, new(*InvalidError)) {
		t.Errorf("kind change: want a plain error, got %v", err)
	}
}
