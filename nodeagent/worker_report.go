package nodeagent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

// report computes the pod's status from the runtime and the worker's
// waiting reasons and hands it to the reporter. podWaiting, when set, is
// why no container could be started at all (sandbox or volumes).
func (w *podWorker) report(ctx context.Context, pod *corralpb.Pod, podWaiting, message string) {
	if w.m.cfg.Reporter == nil {
		return
	}
	attempts, err := w.m.containersOf(ctx, w.uid)
	if err != nil {
		return
	}
	var views []containerView
	for _, c := range pod.GetSpec().GetContainers() {
		v := containerView{name: c.GetName(), image: c.GetImage()}
		list := attempts[c.GetName()]
		if len(list) > 0 {
			v.cur = list[0]
		}
		if len(list) > 1 {
			v.prev = list[1]
		}
		if wr, ok := w.waiting[c.GetName()]; ok {
			v.waitingReason, v.waitingMessage = wr[0], wr[1]
		}
		if podWaiting != "" && v.cur == nil {
			v.waitingReason, v.waitingMessage = podWaiting, message
		}
		if v.cur != nil && v.cur.State == runtime.StateRunning {
			v.started, v.ready = true, true
			if w.m.cfg.Probes != nil {
				v.started = w.m.cfg.Probes.Started(v.cur.ID)
				v.ready = v.started && w.m.cfg.Probes.Ready(v.cur.ID)
			}
		}
		views = append(views, v)
	}
	st := podStatus(pod, views, w.m.cfg.NodeIP, w.podIP(pod), w.startTime)
	prev := w.lastStatus
	if prev == nil {
		// After an agent restart, the status the servers hold is the
		// previous one: keep its transition times.
		prev = pod.GetStatus()
	}
	carryTransitions(prev, st, time.Now())
	w.lastStatus = st
	w.m.cfg.Reporter.Report(pod, st)
}

// terminate stops and removes everything of the pod: containers (SIGTERM,
// the pod's grace period, SIGKILL), their filesystems, volumes and the
// sandbox. It reports whether all is gone; the worker retries otherwise.
func (w *podWorker) terminate(ctx context.Context, pod *corralpb.Pod) bool {
	attempts, err := w.m.containersOf(ctx, w.uid)
	if err != nil {
		w.m.log.Warn("terminate pod: list containers", "pod_uid", w.uid, "err", err)
		return false
	}
	done := true
	for _, list := range attempts {
		for _, cs := range list {
			if cs.State == runtime.StateRunning {
				w.event(pod, "Normal", "Killing", "Stopping container "+cs.Name)
				w.stopContainer(ctx, pod, cs)
			}
			w.removeAttempt(ctx, cs)
		}
	}
	if left, err := w.m.containersOf(ctx, w.uid); err != nil || len(left) > 0 {
		done = false
	}
	if done {
		if err := w.m.cfg.Volumes.TearDown(ctx, w.uid); err != nil {
			w.m.log.Warn("terminate pod: volumes", "pod_uid", w.uid, "err", err)
			done = false
		}
	}
	if done && w.m.cfg.Network != nil {
		if err := w.m.cfg.Network.Detach(ctx, w.uid); err != nil {
			w.m.log.Warn("terminate pod: network", "pod_uid", w.uid, "err", err)
			done = false
		} else {
			w.netIP = ""
		}
	}
	if done {
		if err := w.m.cfg.Runtime.RemoveSandbox(ctx, w.uid); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			w.m.log.Warn("terminate pod: sandbox", "pod_uid", w.uid, "err", err)
			done = false
		}
	}
	if done && w.m.cfg.PodsDir != "" {
		if err := os.RemoveAll(filepath.Join(w.m.cfg.PodsDir, w.uid)); err != nil {
			w.m.log.Warn("terminate pod: pod dir", "pod_uid", w.uid, "err", err)
			done = false
		}
	}
	if done {
		w.m.log.Info("pod removed", "pod_uid", w.uid)
	}
	return done
}
