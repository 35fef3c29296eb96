package api

import (
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// decodeOne decodes a manifest that holds exactly one object.
func decodeOne(t *testing.T, manifest string) *corralpb.Object {
	t.Helper()
	objs, err := Decode([]byte(manifest), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("want one object, got %d", len(objs))
	}
	return objs[0]
}

const defaultsDaemonSetYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      hostNetwork: true
      tolerations:
      - key: a
      - operator: Exists
      containers:
      - name: latest
        image: nginx:latest
        ports:
        - containerPort: 80
        - containerPort: 53
          hostPort: 5353
          protocol: UDP
        env:
        - name: NODE
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        livenessProbe:
          httpGet: {port: 80}
        readinessProbe:
          exec: {command: ["true"]}
          periodSeconds: 3
      - {name: untagged, image: nginx}
      - {name: registry-port, image: "registry:5000/app"}
      - {name: tagged, image: "registry:5000/app:1.2"}
      - {name: digest, image: "nginx@sha256:0123"}
      - {name: explicit, image: nginx, imagePullPolicy: Never}
      volumes:
      - {name: h, hostPath: {path: /var/log}}
      - {name: h2, hostPath: {path: /run, type: Directory}}
      - {name: c, configMap: {name: cfg}}
      - {name: c2, configMap: {name: cfg, defaultMode: 256}}
`

// defaultedDaemonSet decodes defaultsDaemonSetYAML and defaults it.
func defaultedDaemonSet(t *testing.T) *corralpb.Object {
	t.Helper()
	o := decodeOne(t, defaultsDaemonSetYAML)
	SetDefaults(o)
	return o
}

func TestSetDefaultsDaemonSet(t *testing.T) {
	o := defaultedDaemonSet(t)
	ds := o.GetDaemonSet()
	if ds.Metadata.Namespace != "default" {
		t.Errorf("namespace = %q", ds.Metadata.Namespace)
	}
	wantStrategy := &corralpb.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &corralpb.RollingUpdateDaemonSet{
		MaxUnavailable: &corralpb.IntOrString{IntVal: 1}, MaxSurge: &corralpb.IntOrString{},
	}}
	if !proto.Equal(ds.Spec.UpdateStrategy, wantStrategy) {
		t.Errorf("updateStrategy = %v", ds.Spec.UpdateStrategy)
	}
	if ds.Spec.RevisionHistoryLimit == nil || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("revisionHistoryLimit = %v", ds.Spec.RevisionHistoryLimit)
	}
	ps := ds.Spec.Template.Spec
	if ps.RestartPolicy != "Always" || ps.GetTerminationGracePeriodSeconds() != 30 || ps.DnsPolicy != "ClusterFirst" ||
		ps.SchedulerName != "default-scheduler" || ps.SecurityContext == nil {
		t.Errorf("pod spec defaults: %v", ps)
	}
	if ps.Tolerations[0].Operator != "Equal" || ps.Tolerations[1].Operator != "Exists" {
		t.Errorf("toleration operators: %v", ps.Tolerations)
	}
	if v := ps.Volumes; v[0].HostPath.Type == nil || *v[0].HostPath.Type != "" || *v[1].HostPath.Type != "Directory" ||
		v[2].ConfigMap.GetDefaultMode() != 420 || v[3].ConfigMap.GetDefaultMode() != 256 {
		t.Errorf("volumes = %v", v)
	}
	again := proto.Clone(o).(*corralpb.Object)
	SetDefaults(again)
	if !proto.Equal(again, o) {
		t.Error("SetDefaults is not idempotent")
	}
}

func TestSetDefaultsContainers(t *testing.T) {
	ps := defaultedDaemonSet(t).GetDaemonSet().Spec.Template.Spec
	pulls := map[string]string{"latest": "Always", "untagged": "Always", "registry-port": "Always",
		"tagged": "IfNotPresent", "digest": "IfNotPresent", "explicit": "Never"}
	for _, c := range ps.Containers {
		if c.ImagePullPolicy != pulls[c.Name] {
			t.Errorf("%s: imagePullPolicy %q, want %q", c.Name, c.ImagePullPolicy, pulls[c.Name])
		}
		if c.TerminationMessagePath != "/dev/termination-log" || c.TerminationMessagePolicy != "File" {
			t.Errorf("%s: termination message %q %q", c.Name, c.TerminationMessagePath, c.TerminationMessagePolicy)
		}
	}
	c := ps.Containers[0]
	if p := c.Ports[0]; p.Protocol != "TCP" || p.HostPort != 80 {
		t.Errorf("port 0 = %v (protocol TCP, hostPort = containerPort with hostNetwork)", p)
	}
	if p := c.Ports[1]; p.Protocol != "UDP" || p.HostPort != 5353 {
		t.Errorf("port 1 = %v", p)
	}
	if c.Env[0].ValueFrom.FieldRef.ApiVersion != "v1" {
		t.Errorf("fieldRef apiVersion = %q", c.Env[0].ValueFrom.FieldRef.ApiVersion)
	}
	lp := c.LivenessProbe
	if lp.TimeoutSeconds != 1 || lp.PeriodSeconds != 10 || lp.SuccessThreshold != 1 || lp.FailureThreshold != 3 ||
		lp.HttpGet.Scheme != "HTTP" || lp.HttpGet.Path != "/" {
		t.Errorf("liveness probe = %v", lp)
	}
	if c.ReadinessProbe.PeriodSeconds != 3 {
		t.Errorf("readiness periodSeconds overwritten: %d", c.ReadinessProbe.PeriodSeconds)
	}
}

func TestSetDefaultsUpdateStrategy(t *testing.T) {
	tests := []struct {
		name string
		in   *corralpb.DaemonSetUpdateStrategy
		want *corralpb.DaemonSetUpdateStrategy
	}{
		{"OnDelete keeps no rollingUpdate", &corralpb.DaemonSetUpdateStrategy{Type: "OnDelete"},
			&corralpb.DaemonSetUpdateStrategy{Type: "OnDelete"}},
		{"partial rollingUpdate", &corralpb.DaemonSetUpdateStrategy{RollingUpdate: &corralpb.RollingUpdateDaemonSet{
			MaxSurge: &corralpb.IntOrString{IntVal: 2}}},
			&corralpb.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &corralpb.RollingUpdateDaemonSet{
				MaxUnavailable: &corralpb.IntOrString{IntVal: 1}, MaxSurge: &corralpb.IntOrString{IntVal: 2}}}},
		{"percent kept", &corralpb.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &corralpb.RollingUpdateDaemonSet{
			MaxUnavailable: &corralpb.IntOrString{IsString: true, StrVal: "20%"}}},
			&corralpb.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &corralpb.RollingUpdateDaemonSet{
				MaxUnavailable: &corralpb.IntOrString{IsString: true, StrVal: "20%"}, MaxSurge: &corralpb.IntOrString{}}}},
	}
	for _, tt := range tests {
		o := Wrap(&corralpb.DaemonSet{Spec: &corralpb.DaemonSetSpec{UpdateStrategy: tt.in, RevisionHistoryLimit: proto.Int32(0)}})
		SetDefaults(o)
		if got := o.GetDaemonSet().Spec.UpdateStrategy; !proto.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if *o.GetDaemonSet().Spec.RevisionHistoryLimit != 0 {
			t.Errorf("%s: an explicit revisionHistoryLimit 0 was replaced", tt.name)
		}
	}
}

func TestSetDefaultsOtherKinds(t *testing.T) {
	ns := Wrap(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "monitoring"}})
	SetDefaults(ns)
	if n := ns.GetNamespace(); n.Metadata.Namespace != "" || n.Status.Phase != "Active" || len(n.Spec.Finalizers) != 1 || n.Spec.Finalizers[0] != "kubernetes" {
		t.Errorf("namespace = %v", n)
	}
	for _, o := range []*corralpb.Object{
		Wrap(&corralpb.ConfigMap{}), Wrap(&corralpb.Event{}), Wrap(&corralpb.ControllerRevision{}),
	} {
		SetDefaults(o)
		if Meta(o).Namespace != "default" {
			t.Errorf("%s namespace = %q", KindOf(o), Meta(o).Namespace)
		}
	}
	node := Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n"}})
	SetDefaults(node)
	if Meta(node).Namespace != "" {
		t.Error("cluster-scoped Node got a namespace")
	}
	pod := decodeOne(t, `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: web}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    resources:
      limits: {cpu: 200m, memory: 64Mi}
      requests: {cpu: 100m}
`)
	SetDefaults(pod)
	ps := pod.GetPod().Spec
	if Meta(pod).Namespace != "web" || ps.RestartPolicy != "Never" || ps.SchedulerName != "default-scheduler" {
		t.Errorf("pod = %v", pod)
	}
	if req := ps.Containers[0].Resources.Requests; req["cpu"] != "100m" || req["memory"] != "64Mi" {
		t.Errorf("pod requests = %v (want memory defaulted from the limit)", req)
	}
	pc := Wrap(&corralpb.PriorityClass{})
	SetDefaults(pc)
	if pc.GetPriorityClass().GetPreemptionPolicy() != "PreemptLowerPriority" {
		t.Errorf("priority class = %v", pc)
	}
	SetDefaults(&corralpb.Object{}) // must not panic
}
