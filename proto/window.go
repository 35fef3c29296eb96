package corralpb

import "google.golang.org/grpc"

// FlowWindow is the HTTP/2 flow-control window, per stream and per
// connection, of the connections that carry a fleet's traffic: the API
// port's server side, the agents' connections to it and the servers'
// connections to each other.
//
// A fixed window turns off gRPC's bandwidth-delay-product estimation. That
// estimator answers the first data frame that arrives while none of its
// pings is out with a WINDOW_UPDATE and a PING, which the other side must
// read, decrypt and acknowledge. A mostly idle connection gets one for
// nearly every message: an agent's status report took six TLS writes
// instead of two, and the pings were about a quarter of the agents' CPU
// in a fleet's rollout.
//
// 1 MiB is sixteen times gRPC's starting window: a megabyte per round
// trip, ample for a control plane's messages on a LAN (the largest, an
// agent's complete assignments, are a few hundred KiB). The CLI keeps
// gRPC's dynamic window: its connections are short and a snapshot download
// over a slow link is what the estimator is for.
const FlowWindow = 1 << 20

// FlowWindowServerOptions are the server options that fix the flow-control
// windows at FlowWindow.
func FlowWindowServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StaticStreamWindowSize(FlowWindow), grpc.StaticConnWindowSize(FlowWindow)}
}

// FlowWindowDialOptions are the dial options that fix the flow-control
// windows at FlowWindow.
func FlowWindowDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStaticStreamWindowSize(FlowWindow), grpc.WithStaticConnWindowSize(FlowWindow)}
}
