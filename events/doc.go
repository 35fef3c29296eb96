// Package events records Kubernetes-style Events: what agents and the
// leader's controllers tell users about the objects they act on (Pulling,
// Started, BackOff, SuccessfulCreate, ...), shown by `corral describe` and
// `corral get events`.
//
// # Model
//
// A component records an event through a Recorder: an involved object, a
// type (Normal or Warning), a reason and a message. The Buffer, the
// Recorder components use, batches events on the client side and sends
// them to a sink: an agent's sink is the node API's RecordEvents, the
// controller's a function of its own server. As Kubernetes' recorder, it
// combines similar events: past nine different messages about one object
// with one source, type and reason within ten minutes, the rest travel as
// one event "(combined from similar events): <latest message>" (a
// DaemonSet creating 5,000 pods records ten events). Within a batch,
// identical events (same involved object, type, reason, message and
// source) travel once, with a count.
//
// The server correlates each incoming event with the events it stores, as
// Kubernetes' client-side correlator does at the level kubectl users see
// (Aggregate, a pure function): an identical event already stored gets its
// count raised and its lastTimestamp moved to now; anything else becomes a
// new Event named "<involvedObject.name>.<16 hex digits of now in Unix
// nanoseconds>" in the involved object's namespace ("default" for
// cluster-scoped objects such as Nodes). A leader-only loop in package
// scheduler deletes events an hour after they were last seen.
//
// # Bounds
//
// Events are best effort, never a reason to fail or to block: Record
// never waits for the sink, a Buffer holds at most MaxPending events (the
// oldest go first when the sink is down), and a batch the sink refuses as
// invalid or unauthorized is dropped rather than retried.
//
// The package depends only on the object model (proto, api), so that node
// agents and the scheduler can both use it.
package events
