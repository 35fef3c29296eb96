// Package probe runs Kubernetes' liveness, readiness and startup probes
// for the node agent.
//
// # Model
//
// The pure part decides; it never reads the clock, sleeps or does I/O:
//
//   - State is one probe's state machine (kubelet's prober worker): it
//     knows when the next run is due (initialDelaySeconds after the
//     container started, then every periodSeconds), counts consecutive
//     results against successThreshold and failureThreshold, and says when
//     the reported value flips and when the container must be restarted.
//   - Set holds a container's probes and gates liveness and readiness
//     behind the startup probe until that succeeds. It answers Ready and
//     Started for the container's status.
//
// Probers act: HTTPGet, TCPSocket and Exec run one probe with kubelet's
// rules and wording ("HTTP probe failed with statuscode: 500"). HTTP and TCP
// probes dial through a Dialer; NetNSDialer dials from inside a pod's
// network namespace, whose 127.0.0.1 is not the host's.
//
// Manager runs the probes of many containers: one goroutine per probe,
// sleeping until its State says the next run is due, and reports
// outcomes through a callback so the agent can set Ready, emit Unhealthy
// events ("Liveness probe failed: ...") and restart containers.
package probe
