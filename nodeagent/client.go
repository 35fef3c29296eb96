package nodeagent

import (
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// DialServers returns one connection over every server address, over
// mutual TLS: it presents creds' certificate and accepts only a server
// certificate (role server, named pki.ServerName) of creds' CA, both read
// at each handshake, so a renewed certificate is used by the next one.
// gRPC's pick_first policy uses the first address that answers and moves
// to the next when it dies, so the agent survives any server's death.
func DialServers(servers []string, creds *pki.Credentials) (*grpc.ClientConn, error) {
	if len(servers) == 0 {
		return nil, errors.New("no server addresses")
	}
	if creds == nil {
		return nil, errors.New("no TLS credentials to dial the servers with")
	}
	r := manual.NewBuilderWithScheme("corral-servers")
	addrs := make([]resolver.Address, 0, len(servers))
	for _, s := range servers {
		addrs = append(addrs, resolver.Address{Addr: strings.TrimSpace(s)})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	return grpc.NewClient(r.Scheme()+":///servers", append(corralpb.FlowWindowDialOptions(),
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)...)
}
