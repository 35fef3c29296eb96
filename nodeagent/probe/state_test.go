package probe

import (
	"strings"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// probeSpec is a probe with the given thresholds and a TCP handler.
func probeSpec(success, failure int32) *corralpb.Probe {
	return &corralpb.Probe{
		TcpSocket:        &corralpb.TCPSocketAction{Port: &corralpb.IntOrString{IntVal: 80}},
		SuccessThreshold: success, FailureThreshold: failure,
	}
}

// out builds an expected Outcome; flags: c = changed, r = restart,
// i = ignored.
func out(k Kind, res, value Result, flags string) Outcome {
	return Outcome{
		Kind: k, Result: res, Value: value,
		Changed: strings.Contains(flags, "c"),
		Restart: strings.Contains(flags, "r"),
		Ignored: strings.Contains(flags, "i"),
	}
}

type step struct {
	sec   float64
	kind  Kind
	res   Result
	reset bool // instead of a result: the container restarted at sec
	want  Outcome
}

const (
	L = Liveness
	R = Readiness
	S = Startup
	U = Unknown
	F = Failure
	Y = Success
)

// setRule is one rule of kubelet's probe semantics, as a run of steps.
type setRule struct {
	rule                   string
	liveness, readiness    *corralpb.Probe
	startup                *corralpb.Probe
	steps                  []step
	wantStarted, wantReady bool
}

var setRules = []setRule{
	{rule: "no probes: started and ready at once", wantStarted: true, wantReady: true},
	{rule: "readiness starts not ready", readiness: probeSpec(1, 3), wantStarted: true},
	{rule: "liveness starts healthy and does not affect readiness", liveness: probeSpec(1, 3),
		steps: []step{{sec: 0, kind: L, res: Y, want: out(L, Y, Y, "")}}, wantStarted: true, wantReady: true},
	{rule: "startup starts unknown: not started, not ready", startup: probeSpec(1, 3)},
	{rule: "readiness: a success at threshold 1 makes ready", readiness: probeSpec(1, 3),
		steps:       []step{{sec: 0, kind: R, res: Y, want: out(R, Y, Y, "c")}},
		wantStarted: true, wantReady: true},
	{rule: "readiness: successThreshold 3 needs three in a row", readiness: probeSpec(3, 3),
		steps: []step{
			{sec: 0, kind: R, res: Y, want: out(R, Y, F, "")},
			{sec: 10, kind: R, res: Y, want: out(R, Y, F, "")},
			{sec: 20, kind: R, res: F, want: out(R, F, F, "")},
			{sec: 30, kind: R, res: Y, want: out(R, Y, F, "")},
			{sec: 40, kind: R, res: Y, want: out(R, Y, F, "")},
			{sec: 50, kind: R, res: Y, want: out(R, Y, Y, "c")},
		}, wantStarted: true, wantReady: true},
	{rule: "readiness: failures below failureThreshold keep ready, the last unreadies without restart", readiness: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: R, res: Y, want: out(R, Y, Y, "c")},
			{sec: 10, kind: R, res: F, want: out(R, F, Y, "")},
			{sec: 20, kind: R, res: F, want: out(R, F, Y, "")},
			{sec: 30, kind: R, res: F, want: out(R, F, F, "c")},
			{sec: 40, kind: R, res: F, want: out(R, F, F, "")},
		}, wantStarted: true},
	{rule: "readiness keeps probing once unready and recovers", readiness: probeSpec(1, 1),
		steps: []step{
			{sec: 0, kind: R, res: F, want: out(R, F, F, "")},
			{sec: 10, kind: R, res: Y, want: out(R, Y, Y, "c")},
			{sec: 20, kind: R, res: F, want: out(R, F, F, "c")},
			{sec: 30, kind: R, res: Y, want: out(R, Y, Y, "c")},
		}, wantStarted: true, wantReady: true},
	{rule: "liveness: a success resets the failure count", liveness: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 10, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 20, kind: L, res: Y, want: out(L, Y, Y, "")},
			{sec: 30, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 40, kind: L, res: F, want: out(L, F, Y, "")},
		}, wantStarted: true, wantReady: true},
	{rule: "liveness: failureThreshold failures restart, then the probe is on hold", liveness: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 10, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 20, kind: L, res: F, want: out(L, F, F, "cr")},
			{sec: 30, kind: L, res: F, want: out(L, F, F, "i")},
			{sec: 40, kind: L, res: Y, want: out(L, Y, F, "i")},
		}, wantStarted: true, wantReady: true},
	{rule: "startup: success starts the container and finishes the probe", startup: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: S, res: F, want: out(S, F, U, "")},
			{sec: 10, kind: S, res: Y, want: out(S, Y, Y, "c")},
			{sec: 20, kind: S, res: F, want: out(S, F, Y, "i")},
		}, wantStarted: true, wantReady: true},
	{rule: "startup: failureThreshold failures restart", startup: probeSpec(1, 2),
		steps: []step{
			{sec: 0, kind: S, res: F, want: out(S, F, U, "")},
			{sec: 10, kind: S, res: F, want: out(S, F, F, "cr")},
			{sec: 20, kind: S, res: Y, want: out(S, Y, F, "i")},
		}},
	{rule: "startup gates liveness and readiness until it succeeds", liveness: probeSpec(1, 1), readiness: probeSpec(1, 1), startup: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: L, res: F, want: out(L, F, Y, "i")},
			{sec: 0, kind: R, res: Y, want: out(R, Y, F, "i")},
			{sec: 1, kind: S, res: Y, want: out(S, Y, Y, "c")},
			{sec: 2, kind: R, res: Y, want: out(R, Y, Y, "c")},
			{sec: 3, kind: L, res: F, want: out(L, F, F, "cr")},
		}, wantStarted: true, wantReady: true},
	{rule: "startup done but readiness not yet succeeded: started, not ready", readiness: probeSpec(1, 3), startup: probeSpec(1, 3),
		steps:       []step{{sec: 0, kind: S, res: Y, want: out(S, Y, Y, "c")}},
		wantStarted: true},
	{rule: "unknown results count for nothing", readiness: probeSpec(2, 3),
		steps: []step{
			{sec: 0, kind: R, res: Y, want: out(R, Y, F, "")},
			{sec: 10, kind: R, res: U, want: out(R, U, F, "")},
			{sec: 20, kind: R, res: Y, want: out(R, Y, Y, "c")},
		}, wantStarted: true, wantReady: true},
	{rule: "a restarted container starts over: initial values, counts cleared, hold released", liveness: probeSpec(1, 2), readiness: probeSpec(1, 3), startup: probeSpec(1, 3),
		steps: []step{
			{sec: 0, kind: S, res: Y, want: out(S, Y, Y, "c")},
			{sec: 0, kind: R, res: Y, want: out(R, Y, Y, "c")},
			{sec: 1, kind: L, res: F, want: out(L, F, Y, "")},
			{sec: 2, kind: L, res: F, want: out(L, F, F, "cr")},
			{sec: 5, reset: true},
			{sec: 6, kind: L, res: F, want: out(L, F, Y, "i")}, // gated again by startup
			{sec: 6, kind: S, res: Y, want: out(S, Y, Y, "c")},
			{sec: 7, kind: L, res: F, want: out(L, F, Y, "")}, // one failure of two, not three
		}, wantStarted: true},
}

func TestSetRules(t *testing.T) {
	for _, r := range setRules {
		t.Run(r.rule, func(t *testing.T) {
			c := &corralpb.Container{Name: "c", LivenessProbe: r.liveness, ReadinessProbe: r.readiness, StartupProbe: r.startup}
			set := NewSet(c, t0)
			for i, s := range r.steps {
				if s.reset {
					set.Reset(at(s.sec))
					continue
				}
				if got := set.Step(at(s.sec), s.kind, s.res); got != s.want {
					t.Fatalf("step %d (%v %v at %vs):\n got %+v\nwant %+v", i, s.kind, s.res, s.sec, got, s.want)
				}
			}
			if set.Started() != r.wantStarted || set.Ready() != r.wantReady {
				t.Errorf("started=%v ready=%v, want %v %v", set.Started(), set.Ready(), r.wantStarted, r.wantReady)
			}
		})
	}
}

func TestStateSchedule(t *testing.T) {
	timing := Timing{InitialDelay: 5 * time.Second, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 1}
	type check struct {
		sec   float64
		due   bool
		step  Result // Unknown: only check Due
		reset bool
	}
	rows := []struct {
		rule   string
		kind   Kind
		checks []check
	}{
		{"the first run is due initialDelay after the start", Readiness, []check{
			{sec: 0, due: false}, {sec: 4.999, due: false}, {sec: 5, due: true}}},
		{"then every period after the previous run", Readiness, []check{
			{sec: 5, due: true, step: Success}, {sec: 14.9, due: false}, {sec: 15, due: true, step: Failure}, {sec: 24, due: false}, {sec: 25, due: true}}},
		{"a late run moves the schedule", Readiness, []check{
			{sec: 12, due: true, step: Success}, {sec: 21, due: false}, {sec: 22, due: true}}},
		{"a finished startup probe is never due", Startup, []check{
			{sec: 5, due: true, step: Success}, {sec: 15, due: false}, {sec: 1000, due: false}}},
		{"liveness on hold is not due until Reset, which restarts the initial delay", Liveness, []check{
			{sec: 5, due: true, step: Failure}, {sec: 15, due: false}, {sec: 20, reset: true}, {sec: 24, due: false}, {sec: 25, due: true}}},
	}
	for _, r := range rows {
		t.Run(r.rule, func(t *testing.T) {
			s := NewState(r.kind, timing, t0)
			for _, c := range r.checks {
				if c.reset {
					s.Reset(at(c.sec))
					continue
				}
				if got := s.Due(at(c.sec)); got != c.due {
					t.Fatalf("Due at %vs = %v, want %v", c.sec, got, c.due)
				}
				if c.step != Unknown {
					s.Step(at(c.sec), c.step)
				}
			}
		})
	}
}

func TestSetGatesSchedule(t *testing.T) {
	p := probeSpec(1, 3)
	p.InitialDelaySeconds = 5
	c := &corralpb.Container{Name: "c", LivenessProbe: p, StartupProbe: probeSpec(1, 3)}
	set := NewSet(c, t0)
	if _, ok := set.Next(Liveness); ok {
		t.Fatal("liveness scheduled before the startup probe succeeded")
	}
	if !set.Due(at(0), Startup) {
		t.Fatal("startup not due at start")
	}
	set.Step(at(1), Startup, Success)
	if next, ok := set.Next(Liveness); !ok || !next.Equal(at(5)) {
		t.Errorf("liveness next = %v %v, want the start + initialDelay", next, ok)
	}
	if _, ok := set.Next(Readiness); ok {
		t.Error("a missing probe is scheduled")
	}
}

func TestTimingOfDefaults(t *testing.T) {
	got := TimingOf(&corralpb.Probe{})
	want := Timing{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	got = TimingOf(&corralpb.Probe{InitialDelaySeconds: 3, PeriodSeconds: 2, TimeoutSeconds: 4, SuccessThreshold: 2, FailureThreshold: 5})
	want = Timing{InitialDelay: 3 * time.Second, Period: 2 * time.Second, Timeout: 4 * time.Second, SuccessThreshold: 2, FailureThreshold: 5}
	if got != want {
		t.Errorf("explicit %+v, want %+v", got, want)
	}
}

func TestResolvePort(t *testing.T) {
	c := &corralpb.Container{Name: "web", Ports: []*corralpb.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "zero"}}}
	rows := []struct {
		port    *corralpb.IntOrString
		want    int
		wantErr string
	}{
		{&corralpb.IntOrString{IntVal: 9090}, 9090, ""},
		{&corralpb.IntOrString{IsString: true, StrVal: "http"}, 8080, ""},
		{&corralpb.IntOrString{IsString: true, StrVal: "8181"}, 8181, ""},
		{&corralpb.IntOrString{IsString: true, StrVal: "metrics"}, 0, `probe port: couldn't find port "metrics" in container "web"`},
		{&corralpb.IntOrString{IsString: true, StrVal: "zero"}, 0, "probe port: invalid port number: 0"},
		{&corralpb.IntOrString{IntVal: 70000}, 0, "probe port: invalid port number: 70000"},
		{nil, 0, "probe port: no port given"},
	}
	for _, r := range rows {
		got, err := ResolvePort(r.port, c)
		if got != r.want || (err == nil) != (r.wantErr == "") || (err != nil && err.Error() != r.wantErr) {
			t.Errorf("ResolvePort(%v) = %d, %v; want %d, %q", r.port, got, err, r.want, r.wantErr)
		}
	}
}
