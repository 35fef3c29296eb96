package cli

import (
	"strings"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// seedDescribeDS is `describe ds nginx-daemonset` in kubectl's exact
// layout, with the values the seed tutorial shows.
const seedDescribeDS = `Name:           nginx-daemonset
Selector:       app=nginx-daemon
Node-Selector:  <none>
Labels:         app=nginx-daemon
Annotations:    <none>
Desired Number of Nodes Scheduled: 3
Current Number of Nodes Scheduled: 3
Number of Nodes Scheduled with Up-to-date Pods: 3
Number of Nodes Scheduled with Available Pods: 3
Number of Nodes Misscheduled: 0
Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed
Pod Template:
  Labels:  app=nginx-daemon
  Containers:
   nginx:
    Image:        nginx:1.25
    Port:         80/TCP
    Host Port:    0/TCP
    Environment:  <none>
    Mounts:       <none>
  Volumes:        <none>
Events:
  Type    Reason            Age   From                  Message
  ----    ------            ----  ----                  -------
  Normal  SuccessfulCreate  2m    daemonset-controller  Created pod: nginx-daemonset-abc12
  Normal  SuccessfulCreate  2m    daemonset-controller  Created pod: nginx-daemonset-def34
  Normal  SuccessfulCreate  2m    daemonset-controller  Created pod: nginx-daemonset-ghi56
`

// seedDescribeText is the seed tutorial's own copy of the output (its
// whitespace collapsed by the blog).
const seedDescribeText = `Name: nginx-daemonset
Selector: app=nginx-daemon
Node-Selector: <none>
Labels: app=nginx-daemon
Annotations: <none>
Desired Number of Nodes Scheduled: 3
Current Number of Nodes Scheduled: 3
Number of Nodes Scheduled with Up-to-date Pods: 3
Number of Nodes Scheduled with Available Pods: 3
Number of Nodes Misscheduled: 0
Pods Status: 3 Running / 0 Waiting / 0 Succeeded / 0 Failed
Pod Template:
Labels: app=nginx-daemon
Containers:
nginx:
Image: nginx:1.25
Port: 80/TCP
Host Port: 0/TCP
Environment: <none>
Mounts: <none>
Volumes: <none>
Events:
Type Reason Age From Message
---- ------ ---- ---- -------
Normal SuccessfulCreate 2m daemonset-controller Created pod: nginx-daemonset-abc12
Normal SuccessfulCreate 2m daemonset-controller Created pod: nginx-daemonset-def34
Normal SuccessfulCreate 2m daemonset-controller Created pod: nginx-daemonset-ghi56`

func seedEvents() []*corralpb.Event {
	return []*corralpb.Event{seedEvent("nginx-daemonset-abc12"), seedEvent("nginx-daemonset-def34"), seedEvent("nginx-daemonset-ghi56")}
}

func TestDescribeDaemonSetMatchesSeed(t *testing.T) {
	got := describeDaemonSet(seedDaemonSet(), podCounts{running: 3}, seedEvents(), true, testNow)
	if got != seedDescribeDS {
		t.Fatalf("describe ds:\n%s\nwant:\n%s", got, seedDescribeDS)
	}
	if collapse(got) != seedDescribeText {
		t.Fatalf("describe ds does not read as the seed shows:\n%s", collapse(got))
	}
}

func TestDescribeDaemonSetThroughServer(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.now = testNow
	fake.put(objs(seedDaemonSet())[0])
	for i, name := range []string{"nginx-daemonset-abc12", "nginx-daemonset-def34", "nginx-daemonset-ghi56"} {
		fake.put(objs(seedPod(name, "node"+itoa(int32(i+1)), "10.42.0.1"))[0])
		fake.put(objs(seedEvent(name))[0])
	}
	orphan := seedPod("stray", "node1", "10.42.0.9")
	orphan.Metadata.OwnerReferences = nil
	fake.put(objs(orphan)[0])
	other := seedEvent("x")
	other.InvolvedObject.Name = "another-ds"
	fake.put(objs(other)[0])
	out := h.mustRun("describe", "ds", "nginx-daemonset")
	if out != seedDescribeDS {
		t.Fatalf("describe ds:\n%s\nwant:\n%s", out, seedDescribeDS)
	}
	// A prefix describes every match, separated by blank lines.
	out = h.mustRun("describe", "pods", "nginx-daemonset-")
	if n := strings.Count(out, "Name:         nginx-daemonset-"); n != 3 || !strings.Contains(out, "\n\n\nName:") {
		t.Fatalf("describe pods by prefix:\n%s", out)
	}
	if _, errOut, code := h.run("describe", "ds", "nope"); code != 1 || errOut != "Error from server (NotFound): daemonsets.apps \"nope\" not found\n" {
		t.Fatalf("describe missing: exit %d, %q", code, errOut)
	}
}

func TestDescribeDaemonSetTemplateDetails(t *testing.T) {
	ds := seedDaemonSet()
	ds.Metadata.Annotations = map[string]string{"deprecated.daemonset.template.generation": "1"}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	c.Resources = &corralpb.ResourceRequirements{Limits: map[string]string{"memory": "200Mi"}, Requests: map[string]string{"cpu": "100m", "memory": "200Mi"}}
	c.VolumeMounts = []*corralpb.VolumeMount{{Name: "varlog", MountPath: "/var/log"}, {Name: "docker", MountPath: "/var/lib/docker/containers", ReadOnly: true}}
	c.Env = []*corralpb.EnvVar{{Name: "MODE", Value: "fast"}}
	c.Args = []string{"--path.procfs=/host/proc"}
	spec.Volumes = []*corralpb.Volume{{Name: "varlog", HostPath: &corralpb.HostPathVolumeSource{Path: "/var/log"}}}
	spec.Tolerations = []*corralpb.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: "Exists", Effect: "NoSchedule"}}
	spec.NodeSelector = map[string]string{"disktype": "ssd"}
	got := describeDaemonSet(ds, podCounts{running: 1, waiting: 2}, nil, true, testNow)
	want := `Name:           nginx-daemonset
Selector:       app=nginx-daemon
Node-Selector:  disktype=ssd
Labels:         app=nginx-daemon
Annotations:    deprecated.daemonset.template.generation: 1
Desired Number of Nodes Scheduled: 3
Current Number of Nodes Scheduled: 3
Number of Nodes Scheduled with Up-to-date Pods: 3
Number of Nodes Scheduled with Available Pods: 3
Number of Nodes Misscheduled: 0
Pods Status:  1 Running / 2 Waiting / 0 Succeeded / 0 Failed
Pod Template:
  Labels:  app=nginx-daemon
  Containers:
   nginx:
    Image:      nginx:1.25
    Port:       80/TCP
    Host Port:  0/TCP
    Args:
      --path.procfs=/host/proc
    Limits:
      memory:  200Mi
    Requests:
      cpu:     100m
      memory:  200Mi
    Environment:
      MODE:  fast
    Mounts:
      /var/lib/docker/containers from docker (ro)
      /var/log from varlog (rw)
  Volumes:
   varlog:
    Type:          HostPath (bare host directory volume)
    Path:          /var/log
    HostPathType:  <none>
  Node-Selectors:  disktype=ssd
  Tolerations:     node-role.kubernetes.io/control-plane:NoSchedule op=Exists
Events:            <none>
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDescribeNode(t *testing.T) {
	n := testNode("node1", true, map[string]string{"node-role.kubernetes.io/control-plane": "", "disktype": "ssd"})
	n.Spec.Taints = []*corralpb.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}
	n.Status.Allocatable = map[string]string{"cpu": "2", "memory": "4Gi"}
	pod := seedPod("fluentd-x", "node1", "10.42.0.3")
	pod.Metadata.Namespace = "kube-system"
	pod.Spec.Containers[0].Resources = &corralpb.ResourceRequirements{Limits: map[string]string{"memory": "200Mi"}, Requests: map[string]string{"cpu": "100m", "memory": "200Mi"}}
	got := describeNode(n, []*corralpb.Pod{pod}, nil, true, testNow)
	for _, want := range []string{
		"Name:               node1\n",
		"Roles:              control-plane\n",
		"Labels:             disktype=ssd\n                    node-role.kubernetes.io/control-plane=\n",
		"Taints:             node-role.kubernetes.io/control-plane:NoSchedule\n",
		"Unschedulable:      false\n",
		"Addresses:\n  InternalIP:  10.0.0.11\n  Hostname:    node1\n",
		"Capacity:\n  cpu:     2\n  memory:  4Gi\n",
		"Non-terminated Pods:          (1 in total)\n",
		"  kube-system                 fluentd-x    100m (5%)     0 (0%)      200Mi (4%)       200Mi (4%)     30s\n",
		"  cpu                100m (5%)   0 (0%)\n",
		"Events:              <none>\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("describe node lacks %q:\n%s", want, got)
		}
	}
}

func TestDescribePodAndConfigMap(t *testing.T) {
	pod := seedPod("nginx-daemonset-abc12", "node1", "10.42.0.5")
	got := describePod(pod, seedEvents()[:1], true, testNow)
	for _, want := range []string{
		"Name:         nginx-daemonset-abc12\n",
		"Node:         node1/10.0.0.1\n",
		"Status:       Running\n",
		"IPs:\n  IP:           10.42.0.5\n",
		"Controlled By:  DaemonSet/nginx-daemonset\n",
		"    State:          Running\n",
		"    Ready:          True\n",
		"    Restart Count:  0\n",
		"QoS Class:       BestEffort\n",
		"  Normal  SuccessfulCreate  2m    daemonset-controller  Created pod: nginx-daemonset-abc12\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("describe pod lacks %q:\n%s", want, got)
		}
	}
	cm := &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Data: map[string]string{"config.conf": "mode: iptables"}}
	want := "Name:         kube-proxy\nNamespace:    kube-system\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\nconfig.conf:\n----\nmode: iptables\n\n\nBinaryData\n====\n\nEvents:  <none>\n"
	if got := describeConfigMap(cm, nil, true, testNow); got != want {
		t.Errorf("describe cm:\n%q\nwant:\n%q", got, want)
	}
}

func TestSmartLabel(t *testing.T) {
	for in, want := range map[string]string{
		"involvedObject": "Involved Object", "apiVersion": "API Version", "uid": "UID",
		"lastTimestamp": "Last Timestamp", "reason": "Reason", "podIP": "Pod IP", "a.b": "a.b",
	} {
		if got := smartLabel(in); got != want {
			t.Errorf("smartLabel(%q) = %q, want %q", in, got, want)
		}
	}
	_ = time.Second
}

func TestDescribeGenericEvent(t *testing.T) {
	got, err := describeGeneric(&describeEnv{now: testNow}, objs(seedEvent("p1"))[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Name:             nginx-daemonset.p1\n",
		"Involved Object:\n  API Version:   apps/v1\n  Kind:          DaemonSet\n",
		"Reason:  SuccessfulCreate\n",
		"Source:\n  Component:  daemonset-controller\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("describe event lacks %q:\n%s", want, got)
		}
	}
}
