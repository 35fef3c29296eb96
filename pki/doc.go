// Package pki is corral's public-key infrastructure: the cluster CA, the
// certificates it issues, the join tokens that pin it, and the TLS
// configurations every port uses.
//
// The model is swarmkit's and K3s's. A cluster has one CA, created when it
// bootstraps and replicated to the servers through Raft; its key never
// leaves them. Every connection is TLS 1.3 with certificates from that CA,
// and a certificate's subject says who its holder is:
//
//	role    subject                                  issued to
//	server  CN=system:server:NAME, O=system:servers  a server (Raft, peers, proxying to agents)
//	node    CN=system:node:NAME,   O=system:nodes    a node agent
//	admin   CN=NAME,               O=corral:admins   a user who may do everything
//	view    CN=NAME,               O=corral:viewers  a user who may only read
//
// Server certificates name "corral-server" (every server answers to it,
// so clients need not know addresses in advance); node certificates name
// their node. A join token, CRL1::ROLE::CAHASH::SECRET, carries the SHA-256
// of the CA certificate, so a joining machine checks the server it talks
// to before it proves that it knows the secret; the secret itself never
// travels (an HMAC over the request proves it, and the answer is sealed
// with it). Certificates are renewed at a random 50–80 % of their
// validity (RenewAt), as swarmkit does, so a fleet does not renew at once.
//
// This package imports nothing of corral's: the agent, the servers and the
// CLI all build on it.
package pki
