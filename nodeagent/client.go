package nodeagent

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// dialServers returns one connection over every server address: gRPC's
// pick_first policy uses the first that answers and moves to the next when
// it dies, so the agent survives any server's death.
func dialServers(servers []string) (*grpc.ClientConn, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("no server addresses")
	}
	r := manual.NewBuilderWithScheme("corral-servers")
	addrs := make([]resolver.Address, 0, len(servers))
	for _, s := range servers {
		addrs = append(addrs, resolver.Address{Addr: strings.TrimSpace(s)})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	return grpc.NewClient(r.Scheme()+":///servers",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)
}
