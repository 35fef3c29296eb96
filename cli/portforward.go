package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// portForwardOptions are the flags of `corral port-forward`.
type portForwardOptions struct {
	g         *globals
	addresses []string
	mu        sync.Mutex // serializes the messages of the connections
}

// newPortForwardCommand returns `corral port-forward`.
func newPortForwardCommand(g *globals) *cobra.Command {
	o := &portForwardOptions{g: g}
	cmd := &cobra.Command{
		Use:   "port-forward (POD | TYPE/NAME) [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]",
		Short: "Forward one or more local ports to a pod",
		Long: `Forward one or more local ports to a pod.

Each connection to a local port is carried through a server and the pod's node agent to
REMOTE_PORT on the pod's loopback, inside the pod's network namespace, so a port the pod binds
to 127.0.0.1 is reached too. REMOTE_PORT may be a container port's name. With TYPE/NAME
(ds/NAME), the DaemonSet's pod that logs and exec would pick is used. It runs until interrupted.`,
		Example: `  # Listen on port 9100 locally, forwarding to port 9100 of a node-exporter pod
  corral port-forward ds/node-exporter -n monitoring 9100

  # Listen on port 8888 locally, forwarding to 80 in the pod
  corral port-forward pod/nginx-daemonset-x7k2p 8888:80

  # Listen on a random local port, forwarding to the container port named http
  corral port-forward nginx-daemonset-x7k2p :http

  # Listen on all addresses, not only localhost
  corral port-forward --address 0.0.0.0 nginx-daemonset-x7k2p 8888:80`,
	}
	cmd.RunE = g.runE(func(ctx context.Context, args []string) error { return o.run(ctx, args) })
	cmd.Flags().StringSliceVar(&o.addresses, "address", []string{"localhost"}, "Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a value. When localhost is supplied, corral will try to bind on both 127.0.0.1 and ::1 and will fail if neither of these addresses are available to bind.")
	return cmd
}

// forwardedPort is one LOCAL:REMOTE pair.
type forwardedPort struct {
	local, remote int
}

// run executes `corral port-forward`.
func (o *portForwardOptions) run(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("TYPE/NAME and list of ports are required for port-forward")
	}
	target, err := podTargetArg(args[0], "forward ports of")
	if err != nil {
		return err
	}
	ns := o.g.ns()
	var pod *corralpb.Pod
	if target.kind == "DaemonSet" {
		pod, err = o.g.daemonSetPod(ctx, ns, target.name)
	} else {
		var obj *corralpb.Object
		obj, err = o.g.getObject(ctx, "Pod", ns, target.name)
		pod = obj.GetPod()
	}
	if err != nil {
		return err
	}
	if phase := pod.GetStatus().GetPhase(); phase != "Running" {
		if phase == "" {
			phase = "Pending" // no status reported yet
		}
		return fmt.Errorf("unable to forward port because pod is not running. Current status=%s", phase)
	}
	ports, err := parsePortForwards(args[1:], pod)
	if err != nil {
		return err
	}
	hosts, err := listenHosts(o.addresses)
	if err != nil {
		return err
	}
	cl, err := o.g.cluster() // dialled here, shared by the connections
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close() // the listener may already be closed below
		}
	}()
	for _, p := range ports {
		bound := 0
		for _, h := range hosts {
			l, err := net.Listen("tcp", net.JoinHostPort(h.ip, strconv.Itoa(p.local)))
			if err != nil {
				if h.required {
					return fmt.Errorf("unable to listen on port %d: %w", p.local, err)
				}
				continue // localhost's ::1 where there is no IPv6
			}
			if p.local == 0 {
				p.local = l.Addr().(*net.TCPAddr).Port // every address gets the same random port
			}
			listeners = append(listeners, l)
			o.say(func() { o.g.printf("Forwarding from %s -> %d\n", l.Addr(), p.remote) })
			bound++
			go o.accept(ctx, cl, l, pod, p)
		}
		if bound == 0 {
			return fmt.Errorf("unable to listen on any of the requested ports: [{%d %d}]", p.local, p.remote)
		}
	}
	<-ctx.Done()
	return nil
}

// listenHost is an address to listen on; a required one that fails ends
// the command.
type listenHost struct {
	ip       string
	required bool
}

// listenHosts turns --address into IPs: localhost is 127.0.0.1 and, if
// this machine has IPv6, ::1.
func listenHosts(addresses []string) ([]listenHost, error) {
	var out []listenHost
	for _, a := range addresses {
		switch {
		case a == "localhost":
			out = append(out, listenHost{ip: "127.0.0.1"}, listenHost{ip: "::1"})
		case net.ParseIP(a) != nil:
			out = append(out, listenHost{ip: a, required: true})
		default:
			return nil, fmt.Errorf("%s is not a valid IP", a)
		}
	}
	return out, nil
}

// parsePortForwards reads [LOCAL:]REMOTE specs; REMOTE may name one of the
// pod's container ports.
func parsePortForwards(specs []string, pod *corralpb.Pod) ([]*forwardedPort, error) {
	var out []*forwardedPort
	for _, s := range specs {
		local, remote, ok := strings.Cut(s, ":")
		if !ok {
			local, remote = s, s
		}
		r, err := remotePort(remote, pod)
		if err != nil {
			return nil, err
		}
		l := 0
		switch {
		case local == "":
		case !ok && r > 0 && !isNumber(local):
			l = r // a named port alone listens on its number
		default:
			n, err := strconv.Atoi(local)
			if err != nil || n < 0 || n > 65535 {
				return nil, fmt.Errorf("error parsing local port '%s': must be a number between 0 and 65535", local)
			}
			l = n
		}
		out = append(out, &forwardedPort{local: l, remote: r})
	}
	return out, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// remotePort is a port number, or the number of the pod's container port
// of that name.
func remotePort(s string, pod *corralpb.Pod) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 65535 {
			return 0, fmt.Errorf("error parsing remote port '%s': must be a number between 1 and 65535", s)
		}
		return n, nil
	}
	for _, c := range pod.GetSpec().GetContainers() {
		for _, p := range c.GetPorts() {
			if p.GetName() == s {
				return int(p.GetContainerPort()), nil
			}
		}
	}
	return 0, fmt.Errorf("pod '%s' does not have a named port '%s'", pod.GetMetadata().GetName(), s)
}

// accept forwards every connection l takes until ctx ends.
func (o *portForwardOptions) accept(ctx context.Context, cl corralpb.ClusterClient, l net.Listener, pod *corralpb.Pod, p *forwardedPort) {
	go func() {
		<-ctx.Done()
		_ = l.Close() // ends Accept
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		o.say(func() { o.g.printf("Handling connection for %d\n", p.local) })
		go func() {
			if err := forward(ctx, cl, conn, pod, p.remote); err != nil && ctx.Err() == nil {
				// kubectl's words; the connection is closed, the others go on.
				o.say(func() {
					o.g.warnf("error: an error occurred forwarding %d -> %d: %s\n", p.local, p.remote, status.Convert(err).Message())
				})
			}
		}()
	}
}

func (o *portForwardOptions) say(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
}

// forward carries one local connection through the cluster to port of
// the pod, both ways, until both sides have finished sending.
func forward(ctx context.Context, c corralpb.ClusterClient, conn net.Conn, pod *corralpb.Pod, port int) error {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.PortForward(ctx)
	if err != nil {
		return err
	}
	md := pod.GetMetadata()
	if err := st.Send(&corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_Start{Start: &corralpb.PortForwardStart{
		Namespace: md.GetNamespace(), Pod: md.GetName(), Port: int32(port)}}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// Up: the local connection's bytes, then close_write at its end.
	go func() {
		buf := make([]byte, execChunk)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if st.Send(&corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_Data{Data: bytes.Clone(buf[:n])}}) != nil {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = st.CloseSend() // the half-close: the pod's answer still comes
				} else {
					cancel()
				}
				return
			}
		}
	}()
	// Down: the pod's bytes, until its close_write and the stream's end.
	for {
		f, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case isCode(err, codes.Canceled) && ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		if f.GetCloseWrite() {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // the local side may be gone already
			}
			continue
		}
		if _, err := conn.Write(f.GetData()); err != nil {
			return nil // the local side closed: nothing more to deliver
		}
	}
}
