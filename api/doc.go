// Package api holds the rules of corral's object model, shared by the CLI,
// the servers, the controller and the node agents. The objects themselves
// are the protobuf messages of package corralpb (proto/objects.proto); this
// package says what they mean.
//
// # Kinds
//
// Kinds lists the object kinds with their API group and version and the
// names kubectl knows them by: Namespace, Node, Pod, ConfigMap and Event in
// core v1, DaemonSet and ControllerRevision in apps/v1, PriorityClass in
// scheduling.k8s.io/v1. LookupKind resolves any of those names (plural,
// singular, short, group-qualified; case-insensitive). Every object travels
// as a corralpb.Object, a oneof of the kinds' messages; KindOf, Meta, Inner,
// Wrap, Key and Ref work on it without a type switch.
//
// # Manifests: Kubernetes JSON and YAML
//
// Decode and the Marshal functions convert between Kubernetes' JSON (and
// YAML, through sigs.k8s.io/yaml) and the messages. They are written over
// protoreflect rather than protojson because Kubernetes' JSON differs from
// protobuf's canonical form: keys are the fields' json_name from the .proto
// (hostPID, podIP), int64 values are numbers, corral.v1.IntOrString is a
// bare number or string, corral.v1.RawExtension is the embedded document
// itself, and timestamps are RFC 3339 at second precision. Output omits
// unset and empty fields, but writes a proto3 `optional` field that is set
// even to its zero value (`privileged: false`), and a message field that is
// set even when empty (`securityContext: {}`), so that decoding what was
// encoded gives back an equal message. Map keys come out sorted.
//
// The top-level apiVersion and kind select the message and are not stored in
// it: decoded objects leave the messages' api_version and kind fields empty,
// and the encoder always writes them from the Kind table.
//
// Decoding is strict, like `kubectl apply` with server-side field
// validation: an unknown field, a duplicate key, a value of the wrong type or
// a number out of range is an error naming the field's full path
// (spec.template.spec.containers[0].imagePullPolcy: unknown field
// "imagePullPolcy"); null leaves a field unset.
//
// # Defaulting and validation
//
// SetDefaults fills what Kubernetes' defaulting fills (namespace "default",
// the DaemonSet's RollingUpdate strategy with maxUnavailable 1 and maxSurge
// 0, revisionHistoryLimit 10, restartPolicy Always, pull policy by image
// tag, probe timings, ...). Validate applies Kubernetes' validation rules
// and reports every problem with its field path as an *InvalidError whose
// text is what kubectl prints. Validate is meant for defaulted objects but
// accepts the empty values defaulting would fill (an empty protocol or
// restartPolicy, a zero probe threshold), so a client may validate what the
// user wrote before sending it. ValidateUpdate adds the rules on changes:
// names, namespace and uid, a DaemonSet's selector and an immutable
// ConfigMap's data may not change.
//
// # Selectors and scheduling predicates
//
// ParseSelector and LabelSelectorAsSelector give apimachinery label
// selectors; NodeMatchesNodeSelector and NodeMatchesSelectorTerms decide
// node eligibility as Kubernetes' nodeSelector and node affinity do;
// ToleratesTaint and FindUntoleratedTaint match tolerations to taints;
// ParseTaint reads "key=value:Effect"; ParseQuantity and ScaledValue
// interpret resource quantities and int-or-percent values. Everything here
// is pure: no I/O except DecodeFiles, no clock, no logging.
package api
