package scheduler

import (
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// podFacts is what a DaemonSet's plan reads of one pod. Reading it off the
// pod's message means following a handful of pointers to scattered memory
// per pod, and a plan over thousands of nodes spends most of its time
// waiting on those reads.
type podFacts struct {
	uid        string
	owner      string // the controlling owner's uid ("" for none)
	node       string // targetNode
	hash       string // the controller-revision-hash label
	phase      string
	bound      bool // spec.nodeName is set
	ready      bool
	readySince time.Time
}

func newPodFacts(p *corralpb.Pod) *podFacts {
	m := p.GetMetadata()
	_, owner := controllerOf(m)
	ready, since := podReady(p)
	return &podFacts{
		uid: m.GetUid(), owner: owner, node: targetNode(p), hash: m.GetLabels()[LabelRevisionHash],
		phase: p.GetStatus().GetPhase(), bound: p.GetSpec().GetNodeName() != "", ready: ready, readySince: since,
	}
}

// available reports whether the pod has been Ready for minReady at now.
func (f *podFacts) available(minReady time.Duration, now time.Time) bool {
	return f.ready && (minReady == 0 || !f.readySince.Add(minReady).After(now))
}

// PodFacts remembers podFacts from one plan to the next. A stored object
// never changes (a change stores a new one), so facts keyed by the pod's
// message stay true for as long as that message is the stored version; a
// pod not looked up during a whole round (see Rotate) is forgotten. The
// zero value is ready to use. It is not safe
// for concurrent use: the controller keeps one per DaemonSet, used by its
// one worker.
type PodFacts struct {
	cur, prev map[*corralpb.Pod]*podFacts
}

// of returns p's facts.
func (c *PodFacts) of(p *corralpb.Pod) *podFacts {
	if f, ok := c.cur[p]; ok {
		return f
	}
	f, ok := c.prev[p]
	if !ok {
		f = newPodFacts(p)
	}
	if c.cur == nil {
		c.cur = make(map[*corralpb.Pod]*podFacts, len(c.prev))
	}
	c.cur[p] = f
	return f
}

// Rotate ends a round: facts not looked up since the last Rotate go.
func (c *PodFacts) Rotate() {
	c.prev, c.cur = c.cur, nil
}
