package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// collapse squeezes runs of spaces, as the seed tutorial's copy of
// kubectl's output did.
func collapse(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// renderTable prints objects of a kind with options.
func renderTable(t *testing.T, kind string, items []*corralpb.Object, opts tableOptions) string {
	t.Helper()
	k, ok := api.KindByName(kind)
	if !ok {
		t.Fatalf("unknown kind %s", kind)
	}
	if opts.now.IsZero() {
		opts.now = testNow
	}
	var buf bytes.Buffer
	if err := printTable(&buf, k, items, opts); err != nil {
		t.Fatalf("printTable: %v", err)
	}
	return buf.String()
}

func TestGetDaemonSetTableMatchesSeed(t *testing.T) {
	got := renderTable(t, "DaemonSet", objs(seedDaemonSet()), tableOptions{})
	want := "" +
		"NAME              DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE\n" +
		"nginx-daemonset   3         3         3       3            3           <none>          30s\n"
	if got != want {
		t.Fatalf("get ds:\n%s\nwant:\n%s", got, want)
	}
	seed := "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE\n" +
		"nginx-daemonset 3 3 3 3 3 <none> 30s"
	if collapse(got) != seed {
		t.Fatalf("get ds does not read as the seed shows:\n%s", collapse(got))
	}
}

func TestGetDaemonSetWideAndDecorations(t *testing.T) {
	ds := seedDaemonSet()
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"disktype": "ssd", "arch": "arm64"}
	got := renderTable(t, "DaemonSet", objs(ds), tableOptions{wide: true, withNamespace: true, showLabels: true, labelColumns: []string{"app"}})
	want := "" +
		"NAMESPACE   NAME              DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR             AGE   CONTAINERS   IMAGES       SELECTOR           APP            LABELS\n" +
		"default     nginx-daemonset   3         3         3       3            3           arch=arm64,disktype=ssd   30s   nginx        nginx:1.25   app=nginx-daemon   nginx-daemon   app=nginx-daemon\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestGetPodsWide(t *testing.T) {
	pods := objs(seedPod("nginx-daemonset-abc12", "node1", "10.42.0.5"),
		seedPod("nginx-daemonset-def34", "node2", "10.42.1.7"),
		seedPod("nginx-daemonset-ghi56", "node3", "10.42.2.9"))
	got := renderTable(t, "Pod", pods, tableOptions{wide: true})
	want := "" +
		"NAME                    READY   STATUS    RESTARTS   AGE   IP          NODE    NOMINATED NODE   READINESS GATES\n" +
		"nginx-daemonset-abc12   1/1     Running   0          30s   10.42.0.5   node1   <none>           <none>\n" +
		"nginx-daemonset-def34   1/1     Running   0          30s   10.42.1.7   node2   <none>           <none>\n" +
		"nginx-daemonset-ghi56   1/1     Running   0          30s   10.42.2.9   node3   <none>           <none>\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// The seed's own columns, in its order, are all there.
	for i, line := range strings.Split(strings.TrimSpace(collapse(got)), "\n")[1:] {
		f := strings.Fields(line)
		seed := [][]string{{"nginx-daemonset-abc12", "node1"}, {"nginx-daemonset-def34", "node2"}, {"nginx-daemonset-ghi56", "node3"}}[i]
		if f[0] != seed[0] || f[1] != "1/1" || f[2] != "Running" || f[3] != "0" || f[4] != "30s" || f[6] != seed[1] {
			t.Fatalf("row %d %q does not carry the seed's values", i, line)
		}
	}
}

func TestGetNodes(t *testing.T) {
	cordoned := testNode("node2", true, nil)
	cordoned.Spec.Unschedulable = true
	noReady := testNode("node4", true, nil)
	noReady.Status.Conditions = nil
	items := objs(
		testNode("node1", true, map[string]string{"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "true"}),
		cordoned,
		testNode("node3", false, map[string]string{"kubernetes.io/role": "edge"}),
		noReady,
	)
	got := renderTable(t, "Node", items, tableOptions{})
	want := "" +
		"NAME    STATUS                     ROLES                  AGE    VERSION\n" +
		"node1   Ready                      control-plane,master   2d2h   v0.1.0\n" +
		"node2   Ready,SchedulingDisabled   <none>                 2d2h   v0.1.0\n" +
		"node3   NotReady                   edge                   2d2h   v0.1.0\n" +
		"node4   Unknown                    <none>                 2d2h   v0.1.0\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	wide := renderTable(t, "Node", items[:1], tableOptions{wide: true})
	if !strings.Contains(wide, "INTERNAL-IP   EXTERNAL-IP   OS-IMAGE") || !strings.Contains(wide, "10.0.0.11     <none>        Debian GNU/Linux 12   6.1.0            corral://v0.1.0") {
		t.Fatalf("wide nodes:\n%s", wide)
	}
}

func TestGetEventsAllNamespaces(t *testing.T) {
	ev := seedEvent("nginx-daemonset-abc12")
	repeated := seedEvent("nginx-daemonset-def34")
	repeated.Type, repeated.Reason, repeated.Count = "Warning", "FailedCreate", 3
	repeated.LastTimestamp = ago(10 * time.Second)
	got := renderTable(t, "Event", objs(ev, repeated), tableOptions{withNamespace: true})
	want := "" +
		"NAMESPACE   LAST SEEN          TYPE      REASON             OBJECT                      MESSAGE\n" +
		"default     2m                 Normal    SuccessfulCreate   daemonset/nginx-daemonset   Created pod: nginx-daemonset-abc12\n" +
		"default     10s (x3 over 2m)   Warning   FailedCreate       daemonset/nginx-daemonset   Created pod: nginx-daemonset-def34\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestOtherKindTables(t *testing.T) {
	ctl := true
	cases := []struct {
		kind string
		obj  *corralpb.Object
		want string
	}{
		{"Namespace", api.Wrap(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "monitoring", CreationTimestamp: ago(5 * time.Minute)}, Status: &corralpb.NamespaceStatus{Phase: "Active"}}),
			"NAME         STATUS   AGE\nmonitoring   Active   5m\n"},
		{"ConfigMap", api.Wrap(&corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "kube-proxy", CreationTimestamp: ago(90 * time.Second)}, Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {0xff}}}),
			"NAME         DATA   AGE\nkube-proxy   2      90s\n"},
		{"ControllerRevision", api.Wrap(&corralpb.ControllerRevision{Metadata: &corralpb.ObjectMeta{Name: "nginx-daemonset-7f9c", CreationTimestamp: ago(3 * time.Hour),
			OwnerReferences: []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: "nginx-daemonset", Controller: &ctl}}}, Revision: 2}),
			"NAME                   CONTROLLER                       REVISION   AGE\nnginx-daemonset-7f9c   daemonset.apps/nginx-daemonset   2          3h\n"},
		{"PriorityClass", api.Wrap(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "system-node-critical", CreationTimestamp: ago(400 * 24 * time.Hour)}, Value: 2000001000}),
			"NAME                   VALUE        GLOBAL-DEFAULT   AGE\nsystem-node-critical   2000001000   false            400d\n"},
	}
	for _, c := range cases {
		if got := renderTable(t, c.kind, []*corralpb.Object{c.obj}, tableOptions{}); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.kind, got, c.want)
		}
	}
}

func TestWithKindPrefixesNames(t *testing.T) {
	got := renderTable(t, "DaemonSet", objs(seedDaemonSet()), tableOptions{withKind: true, noHeaders: true})
	if !strings.HasPrefix(got, "daemonset.apps/nginx-daemonset   3") {
		t.Fatalf("got %q", got)
	}
}

func TestHumanDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-2 * time.Second, "<invalid>"},
		{-500 * time.Millisecond, "0s"},
		{0, "0s"},
		{30 * time.Second, "30s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{5*time.Minute + 10*time.Second, "5m10s"},
		{9*time.Minute + 59*time.Second, "9m59s"},
		{10 * time.Minute, "10m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{7*time.Hour + 59*time.Minute, "7h59m"},
		{8 * time.Hour, "8h"},
		{47 * time.Hour, "47h"},
		{51 * time.Hour, "2d3h"},
		{48 * time.Hour, "2d"},
		{10 * 24 * time.Hour, "10d"},
		{729 * 24 * time.Hour, "729d"},
		{2 * 365 * 24 * time.Hour, "2y"},
		{(3*365 + 100) * 24 * time.Hour, "3y100d"},
		{9 * 365 * 24 * time.Hour, "9y"},
	}
	for _, c := range cases {
		if got := humanDuration(c.d); got != c.want {
			t.Errorf("humanDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := since(nil, testNow); got != "<unknown>" {
		t.Errorf("since(nil) = %q", got)
	}
}

func TestPodStatus(t *testing.T) {
	waiting := func(reason string) *corralpb.ContainerState {
		return &corralpb.ContainerState{Waiting: &corralpb.ContainerStateWaiting{Reason: reason}}
	}
	terminated := func(code int32, reason string, sig int32) *corralpb.ContainerState {
		return &corralpb.ContainerState{Terminated: &corralpb.ContainerStateTerminated{ExitCode: code, Reason: reason, Signal: sig}}
	}
	running := &corralpb.ContainerState{Running: &corralpb.ContainerStateRunning{}}
	pod := func(phase string, inits []*corralpb.ContainerStatus, cs ...*corralpb.ContainerStatus) *corralpb.Pod {
		p := &corralpb.Pod{
			Metadata: &corralpb.ObjectMeta{Name: "p"},
			Spec:     &corralpb.PodSpec{Containers: make([]*corralpb.Container, len(cs)), InitContainers: make([]*corralpb.Container, len(inits))},
			Status:   &corralpb.PodStatus{Phase: phase, ContainerStatuses: cs, InitContainerStatuses: inits},
		}
		return p
	}
	deleting := pod("Running", nil, &corralpb.ContainerStatus{Ready: true, State: running})
	deleting.Metadata.DeletionTimestamp = ago(time.Second)
	lost := pod("Running", nil, &corralpb.ContainerStatus{Ready: true, State: running})
	lost.Metadata.DeletionTimestamp = ago(time.Second)
	lost.Status.Reason = "NodeLost"
	restarted := pod("Running", nil, &corralpb.ContainerStatus{Ready: true, State: running, RestartCount: 5,
		LastState: &corralpb.ContainerState{Terminated: &corralpb.ContainerStateTerminated{FinishedAt: ago(5 * time.Minute)}}})
	cases := []struct {
		name                  string
		pod                   *corralpb.Pod
		ready, status, starts string
	}{
		{"pending", pod("Pending", nil, &corralpb.ContainerStatus{State: waiting("ContainerCreating")}), "0/1", "ContainerCreating", "0"},
		{"running", pod("Running", nil, &corralpb.ContainerStatus{Ready: true, State: running}), "1/1", "Running", "0"},
		{"crashloop", pod("Running", nil, &corralpb.ContainerStatus{State: waiting("CrashLoopBackOff"), RestartCount: 3}), "0/1", "CrashLoopBackOff", "3"},
		{"completed", pod("Succeeded", nil, &corralpb.ContainerStatus{State: terminated(0, "Completed", 0)}), "0/1", "Completed", "0"},
		{"exit code", pod("Failed", nil, &corralpb.ContainerStatus{State: terminated(2, "", 0)}), "0/1", "ExitCode:2", "0"},
		{"signal", pod("Failed", nil, &corralpb.ContainerStatus{State: terminated(137, "", 9)}), "0/1", "Signal:9", "0"},
		{"init waiting", pod("Pending", []*corralpb.ContainerStatus{{State: terminated(0, "Completed", 0)}, {State: running}}, &corralpb.ContainerStatus{State: waiting("PodInitializing")}), "0/1", "Init:1/2", "0"},
		{"init failed", pod("Pending", []*corralpb.ContainerStatus{{State: terminated(1, "Error", 0)}}, &corralpb.ContainerStatus{}), "0/1", "Init:Error", "0"},
		{"init backoff", pod("Pending", []*corralpb.ContainerStatus{{State: waiting("CrashLoopBackOff")}}, &corralpb.ContainerStatus{}), "0/1", "Init:CrashLoopBackOff", "0"},
		{"terminating", deleting, "1/1", "Terminating", "0"},
		{"node lost", lost, "1/1", "Unknown", "0"},
		{"restarts ago", restarted, "1/1", "Running", "5 (5m ago)"},
	}
	for _, c := range cases {
		s := summarizePod(c.pod, testNow)
		got := []string{itoa(int32(s.ready)) + "/" + itoa(int32(s.total)), s.status, s.restarts}
		want := []string{c.ready, c.status, c.starts}
		if strings.Join(got, " | ") != strings.Join(want, " | ") {
			t.Errorf("%s: got %q, want %q", c.name, got, want)
		}
	}
}
