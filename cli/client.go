package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// pickFirstConfig makes the channel try the servers in order and stay on
// the first that answers; a dead server is skipped.
const pickFirstConfig = `{"loadBalancingConfig":[{"pick_first":{}}]}`

// dial opens one channel over every server address with client-side
// pick-first balancing, over mutual TLS: the servers must show a
// certificate of the cluster CA naming pki.ServerName and the server role,
// and the CLI presents the user's certificate. grpc.NewClient connects
// lazily, on the first RPC.
func dial(c *connection) (*grpc.ClientConn, error) {
	creds, err := c.credentials()
	if err != nil {
		return nil, err
	}
	r := manual.NewBuilderWithScheme("corral")
	addrs := make([]resolver.Address, 0, len(c.servers))
	for _, s := range c.servers {
		addrs = append(addrs, resolver.Address{Addr: s})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	tlsConfig := creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer))
	conn, err := grpc.NewClient(r.Scheme()+":///cluster",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
		grpc.WithDefaultServiceConfig(pickFirstConfig),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(c.servers, ","), err)
	}
	return conn, nil
}

// cluster returns the Cluster client, dialing on first use.
func (g *globals) cluster() (corralpb.ClusterClient, error) {
	if g.client != nil {
		return g.client, nil
	}
	c, err := g.connection()
	if err != nil {
		return nil, err
	}
	conn, err := dial(c)
	if err != nil {
		return nil, err
	}
	g.conn, g.client, g.dialed = conn, corralpb.NewClusterClient(conn), c.servers
	return g.client, nil
}

// closeConn closes the connection if one was opened.
func (g *globals) closeConn() error {
	if g.conn == nil {
		return nil
	}
	conn := g.conn
	g.conn, g.client, g.dialed = nil, nil, nil
	if err := conn.Close(); err != nil {
		return fmt.Errorf("close grpc connection: %w", err)
	}
	return nil
}

// timeout parses --request-timeout like kubectl: a Go duration, or a bare
// number of seconds; 0 means no timeout.
func (g *globals) timeout() (time.Duration, error) {
	s := strings.TrimSpace(g.requestTimeout)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid timeout value %q: timeout must be non-negative", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid timeout value %q: must be a single integer in seconds or a duration such as 30s, 2m", s)
	}
	return d, nil
}

// unary returns a context bounded by --request-timeout for one unary call.
func (g *globals) unary(ctx context.Context) (context.Context, context.CancelFunc, error) {
	d, err := g.timeout()
	if err != nil {
		return nil, nil, err
	}
	if d == 0 {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, nil
	}
	c, cancel := context.WithTimeout(ctx, d)
	return c, cancel, nil
}

// do runs one unary call against the cluster under --request-timeout.
func (g *globals) do(ctx context.Context, fn func(ctx context.Context, c corralpb.ClusterClient) error) error {
	c, err := g.cluster()
	if err != nil {
		return err
	}
	ctx, cancel, err := g.unary(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return fn(ctx, c)
}

// getObject fetches one object.
func (g *globals) getObject(ctx context.Context, kind, namespace, name string) (*corralpb.Object, error) {
	var obj *corralpb.Object
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Get(ctx, &corralpb.GetRequest{Kind: kind, Namespace: namespace, Name: name})
		if err != nil {
			return fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
		}
		obj = resp.GetObject()
		return nil
	})
	return obj, err
}

// listObjects lists the objects a request selects.
func (g *globals) listObjects(ctx context.Context, req *corralpb.ListRequest) (*corralpb.ListResponse, error) {
	var out *corralpb.ListResponse
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.List(ctx, req)
		if err != nil {
			return fmt.Errorf("list %s: %w", req.GetKind(), err)
		}
		out = resp
		return nil
	})
	return out, err
}

// updateObject replaces an object (conditional on its resourceVersion when
// set) and returns the stored result.
func (g *globals) updateObject(ctx context.Context, obj *corralpb.Object, dryRun bool) (*corralpb.Object, error) {
	var out *corralpb.Object
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Update(ctx, &corralpb.UpdateRequest{Object: obj, DryRun: dryRun})
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		out = resp.GetObject()
		return nil
	})
	return out, err
}

// createObject creates an object and returns the stored result.
func (g *globals) createObject(ctx context.Context, obj *corralpb.Object, dryRun bool) (*corralpb.Object, error) {
	var out *corralpb.Object
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Create(ctx, &corralpb.CreateRequest{Object: obj, DryRun: dryRun})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		out = resp.GetObject()
		return nil
	})
	return out, err
}
