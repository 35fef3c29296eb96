package cli

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

// TestLogsOfManyPods: a DaemonSet's one pod as kubectl picks it, every pod
// a selector picks (sequentially, or followed at once), --prefix and
// --all-containers.
func TestLogsOfManyPods(t *testing.T) {
	fake := newFakeCluster()
	var mu sync.Mutex
	var reqs []string
	var failing string // a pod whose followed stream fails; the others' then never end
	fake.logs = func(req *corralpb.LogsRequest, st grpc.ServerStreamingServer[corralpb.LogsChunk]) error {
		mu.Lock()
		reqs = append(reqs, fmt.Sprintf("%s/%s tail=%d follow=%v", req.GetPod(), req.GetContainer(), req.GetTailLines(), req.GetFollow()))
		fail := failing
		mu.Unlock()
		if fail != "" && req.GetFollow() {
			if req.GetPod() == fail {
				return status.Error(codes.Unavailable, "the agent of node \"node2\" is unreachable")
			}
			<-st.Context().Done()
			return nil
		}
		// Chunks of 4 bytes cut lines apart; the last line has no end.
		out := req.GetPod() + " says hi\n" + req.GetPod() + " says bye"
		for i := 0; i < len(out); i += 4 {
			if err := st.Send(&corralpb.LogsChunk{Data: []byte(out[i:min(i+4, len(out))])}); err != nil {
				return err
			}
		}
		return nil
	}
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := reqs
		reqs = nil
		return out
	}
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	readySince := func(p *corralpb.Pod, d time.Duration) *corralpb.Pod {
		p.Status.Conditions[0].LastTransitionTime = timestamppb.New(testNow.Add(-d))
		return p
	}
	pending := seedPod("nginx-daemonset-aaaaa", "node1", "")
	pending.Status = &corralpb.PodStatus{Phase: "Pending"}
	fake.put(objs(pending)[0])
	fake.put(objs(readySince(seedPod("nginx-daemonset-bbbbb", "node2", "10.42.2.2"), 20*time.Second))[0])
	fake.put(objs(readySince(seedPod("nginx-daemonset-ccccc", "node3", "10.42.3.2"), 25*time.Second))[0])
	stray := seedPod("nginx-daemonset-zzzzz", "node4", "10.42.4.2") // matches the selector, but another controller's
	stray.Metadata.OwnerReferences[0].Uid = "other-uid"
	fake.put(objs(readySince(stray, time.Hour))[0])

	// ds/NAME: the pod Ready longest, named on stderr.
	out, errOut, code := h.run("logs", "ds/nginx-daemonset")
	if code != 0 || out != "nginx-daemonset-ccccc says hi\nnginx-daemonset-ccccc says bye" || errOut != "Found 3 pods, using pod/nginx-daemonset-ccccc\n" {
		t.Fatalf("logs ds/: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := taken(); len(got) != 1 || got[0] != "nginx-daemonset-ccccc/nginx tail=-1 follow=false" {
		t.Fatalf("logs ds/ requests: %v", got)
	}
	fake.mu.Lock()
	delete(fake.objs, fakeKey("Pod", "default", "nginx-daemonset-zzzzz"))
	fake.mu.Unlock()

	// -l: every pod, 10 lines each unless --tail says otherwise; --prefix
	// writes whole lines, the last one ended.
	out = h.mustRun("logs", "-l", "app=nginx-daemon", "--prefix")
	var want []string
	for _, p := range []string{"aaaaa", "bbbbb", "ccccc"} {
		want = append(want, fmt.Sprintf("[pod/nginx-daemonset-%[1]s/nginx] nginx-daemonset-%[1]s says hi", p),
			fmt.Sprintf("[pod/nginx-daemonset-%[1]s/nginx] nginx-daemonset-%[1]s says bye", p))
	}
	if out != strings.Join(want, "\n")+"\n" {
		t.Fatalf("logs -l --prefix:\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
	if got := strings.Join(taken(), ","); got != "nginx-daemonset-aaaaa/nginx tail=10 follow=false,nginx-daemonset-bbbbb/nginx tail=10 follow=false,nginx-daemonset-ccccc/nginx tail=10 follow=false" {
		t.Fatalf("logs -l requests: %s", got)
	}
	h.mustRun("logs", "-l", "app=nginx-daemon", "--tail=-1")
	if got := taken(); len(got) != 3 || !strings.HasSuffix(got[0], "tail=-1 follow=false") {
		t.Fatalf("logs -l --tail=-1 requests: %v", got)
	}

	// -f -l follows them all at once, each line whole.
	out = h.mustRun("logs", "-f", "-l", "app=nginx-daemon", "--prefix")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sort.Strings(lines)
	sorted := append([]string(nil), want...)
	sort.Strings(sorted)
	if strings.Join(lines, "\n") != strings.Join(sorted, "\n") {
		t.Fatalf("logs -f -l --prefix:\n%s", out)
	}
	if got := taken(); len(got) != 3 || !strings.HasSuffix(got[0], "follow=true") {
		t.Fatalf("logs -f -l requests: %v", got)
	}

	// One followed stream's error ends them all, as in kubectl.
	mu.Lock()
	failing = "nginx-daemonset-bbbbb"
	mu.Unlock()
	type result struct {
		errOut string
		code   int
	}
	done := make(chan result, 1)
	go func() {
		_, errOut, code := h.run("logs", "-f", "-l", "app=nginx-daemon")
		done <- result{errOut, code}
	}()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.errOut, `the agent of node "node2" is unreachable`) {
			t.Fatalf("logs -f -l with a failing stream: exit %d, stderr %q", r.code, r.errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs -f -l went on following after one stream failed")
	}
	mu.Lock()
	failing = ""
	mu.Unlock()
	taken()

	// --all-containers: init containers first, then the others.
	multi := seedPod("multi", "node1", "10.42.1.9")
	multi.Metadata.Labels = map[string]string{"app": "multi"}
	multi.Spec.InitContainers = []*corralpb.Container{{Name: "setup", Image: "busybox:1.36"}}
	multi.Spec.Containers = append(multi.Spec.Containers, &corralpb.Container{Name: "sidecar", Image: "busybox:1.36"})
	fake.put(objs(multi)[0])
	h.mustRun("logs", "multi", "--all-containers")
	if got := strings.Join(taken(), ","); got != "multi/setup tail=-1 follow=false,multi/nginx tail=-1 follow=false,multi/sidecar tail=-1 follow=false" {
		t.Fatalf("--all-containers requests: %s", got)
	}

	for _, tc := range []struct {
		args       []string
		code       int
		out, err   string
		noRequests bool
	}{
		{args: []string{"-f", "-l", "app=nginx-daemon", "--max-log-requests=2"}, code: 1,
			err: "error: you are attempting to follow 3 log streams, but maximum allowed concurrency is 2, use --max-log-requests to increase the limit\n"},
		{args: []string{"-l", "app=none"}, err: "No resources found in default namespace.\n"},
		{args: []string{"-l", "app=multi", "web"}, code: 1, err: "error: only a selector (-l) or a POD name is allowed\n"},
		{args: []string{"multi", "--all-containers", "-c", "nginx"}, code: 1, err: "error: --all-containers=true should not be specified with container name nginx\n"},
		{args: []string{"ds/missing"}, code: 1, err: `Error from server (NotFound): daemonsets.apps "missing" not found` + "\n"},
	} {
		out, errOut, code := h.run(append([]string{"logs"}, tc.args...)...)
		if code != tc.code || out != tc.out || errOut != tc.err {
			t.Errorf("logs %v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.out, tc.err)
		}
		if got := taken(); len(got) != 0 {
			t.Errorf("logs %v made requests %v", tc.args, got)
		}
	}
}
