package cli

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestParseWaitFor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want waitCondition
		err  string
	}{
		{in: "delete", want: waitCondition{kind: "delete"}},
		{in: "Create", want: waitCondition{kind: "create"}},
		{in: "condition=Ready", want: waitCondition{kind: "condition", subject: "Ready", value: "True"}},
		{in: "condition=ready=false", want: waitCondition{kind: "condition", subject: "ready", value: "false"}},
		{in: "jsonpath={.status.numberReady}=3", want: waitCondition{kind: "jsonpath", subject: "{.status.numberReady}", value: "3", hasValue: true}},
		{in: "jsonpath={.status.phase}=", want: waitCondition{kind: "jsonpath", subject: "{.status.phase}", hasValue: true}},
		{in: "jsonpath={.status.podIP}", want: waitCondition{kind: "jsonpath", subject: "{.status.podIP}"}},
		{in: "jsonpath=.status.phase=Running", want: waitCondition{kind: "jsonpath", subject: ".status.phase", value: "Running", hasValue: true}},
		{in: "", err: "--for must be specified"},
		{in: "ready", err: `unrecognized condition: "ready"`},
		{in: "condition=", err: `unrecognized condition: "condition="`},
		{in: "jsonpath={.status.phase", err: "has no closing }"},
		{in: "jsonpath={.status.phase}Running", err: `unrecognized condition`},
		{in: "jsonpath={}=1", err: "jsonpath expression cannot be empty"},
	} {
		got, err := parseWaitFor(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseWaitFor(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseWaitFor(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestWaitConditionMet(t *testing.T) {
	pod := objs(seedPod("p", "node1", "10.42.1.2"))[0] // Running, Ready=True
	ds := objs(seedDaemonSet())[0]                     // numberReady 3
	for _, tc := range []struct {
		spec string
		obj  *corralpb.Object
		want bool
		err  string
	}{
		{"condition=Ready", pod, true, ""},
		{"condition=ready=TRUE", pod, true, ""},
		{"condition=Ready=False", pod, false, ""},
		{"condition=PodScheduled", pod, false, ""}, // no such condition yet
		{"jsonpath={.status.phase}=Running", pod, true, ""},
		{"jsonpath={.status.phase}=Pending", pod, false, ""},
		{"jsonpath={.status.podIP}", pod, true, ""},
		{"jsonpath={.status.nominatedNodeName}", pod, false, ""},
		{"jsonpath={.status.numberReady}=3", ds, true, ""},
		{"jsonpath={.status.numberReady}=2", ds, false, ""},
		{"jsonpath={.spec.template.spec.containers[*].name}=nginx", ds, true, ""},
		{"jsonpath={.metadata.labels}=x", ds, false, ""},
		{"create", ds, true, ""},
		{"delete", ds, false, ""},
	} {
		c, err := parseWaitFor(tc.spec)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.spec, err)
		}
		got, err := c.met(tc.obj)
		if got != tc.want || (err != nil) != (tc.err != "") {
			t.Errorf("--for=%s on %s: %v, %v; want %v", tc.spec, kindOfTest(tc.obj), got, err, tc.want)
		}
	}
	// A path with several values cannot be compared with one.
	two := objs(seedDaemonSet())[0]
	two.GetDaemonSet().Spec.Template.Spec.Containers = append(two.GetDaemonSet().Spec.Template.Spec.Containers, &corralpb.Container{Name: "side", Image: "x"})
	c, _ := parseWaitFor("jsonpath={.spec.template.spec.containers[*].name}=nginx")
	if _, err := c.met(two); err == nil || !strings.Contains(err.Error(), "more than one value") {
		t.Errorf("several values: %v", err)
	}
}

func kindOfTest(o *corralpb.Object) string {
	if o.GetPod() != nil {
		return "pod"
	}
	return "daemonset"
}

// A --timeout that runs out while the object is still being read is the
// wait's timeout, not the read's error; another error of the read is told
// as it is.
func TestWaitTimesOutDuringTheRead(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	fake.setList(func(ctx context.Context, _ *corralpb.ListRequest) error {
		<-ctx.Done() // a server too slow to answer in time
		return status.FromContextError(ctx.Err()).Err()
	})
	out, errOut, code := h.run("wait", "ds/nginx-daemonset", "--for=jsonpath={.status.numberReady}=3", "--timeout=200ms")
	if code != 1 || out != "" || errOut != "error: timed out waiting for the condition on daemonsets/nginx-daemonset\n" {
		t.Fatalf("timeout during the read: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	fake.setList(func(context.Context, *corralpb.ListRequest) error {
		return status.Error(codes.PermissionDenied, `daemonsets is forbidden: User "viewer" cannot list resource "daemonsets"`)
	})
	out, errOut, code = h.run("wait", "ds/nginx-daemonset", "--for=jsonpath={.status.numberReady}=3", "--timeout=60s")
	if code != 1 || out != "" || !strings.Contains(errOut, "forbidden") || strings.Contains(errOut, "timed out") {
		t.Fatalf("a refused read: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
