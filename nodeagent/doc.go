// Package nodeagent is corral's node agent: everything that runs on a node.
//
// The agent registers its Node with any server (labels and taints from its
// flags win; others set with the CLI survive), heartbeats, and keeps one
// assignments stream open: the full set of pods bound to the node (and the
// ConfigMaps they use) first, then every change. It keeps the last set on
// disk, so that with no server reachable — partitioned, or rebooted while
// the control plane is down — it keeps running its pods from that local
// copy and reconciles when a server returns.
//
// Data flows one way: desired state comes in on the stream, a pure diff of
// desired against running drives one worker per pod (sub-packages: runtime,
// image, volume, probe), and observed state goes back as coalesced batches
// of pod status updates.
//
// Every connection is mutual TLS with certificates of the cluster CA
// (package pki). The agent's identity is a node certificate kept in its
// certificate directory: LoadOrCertify gets it with a join token on the
// first start, the running agent renews it before it expires
// (RenewCertificates), and the agent API (logs, exec) admits servers'
// certificates only.
package nodeagent
