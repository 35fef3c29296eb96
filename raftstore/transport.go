package raftstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is Raft's stream layer: TCP over a listener this package
// opens itself (so that a server started on port 0 advertises the port it
// really got), wrapped in mutual TLS that admits only servers of the
// cluster: both sides present a server certificate of the cluster CA.
type streamLayer struct {
	net.Listener
	serverTLS, clientTLS *tls.Config
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// handshakeTimeout bounds a Raft connection's TLS handshake: a peer that
// connects and sends nothing must not hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

// Accept returns the next connection, to be TLS-handshaken on first use
// (by the transport's goroutine for it, so a slow peer holds up no other).
func (l *streamLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.serverTLS)}, nil
}

// serverConn is an accepted TLS connection whose handshake, done on first
// use, has a deadline.
type serverConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		if c.err = c.SetDeadline(time.Now().Add(handshakeTimeout)); c.err != nil {
			return
		}
		if c.err = c.Handshake(); c.err != nil {
			return
		}
		c.err = c.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: l.clientTLS}
	return d.Dial("tcp", string(address))
}

// listenRaft binds addr and returns the stream layer, speaking TLS with
// serverTLS to those who connect and clientTLS to those it dials, and the
// address to advertise, which must name a concrete host.
func listenRaft(addr string, serverTLS, clientTLS *tls.Config) (*streamLayer, string, error) {
	if serverTLS == nil || clientTLS == nil {
		return nil, "", fmt.Errorf("raft transport on %s: TLS configurations are required", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen for raft on %s: %w", addr, err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, "", fmt.Errorf("raft address %s: give a host other peers can reach, not a wildcard", addr)
	}
	return &streamLayer{Listener: ln, serverTLS: serverTLS, clientTLS: clientTLS}, tcp.String(), nil
}
