package probe

import (
	"context"
	"net"
)

// TCPSocket is a tcpSocket probe: success is an accepted connection.
type TCPSocket struct {
	// Address is host:port.
	Address string
	// Dialer dials; nil means the host's network.
	Dialer Dialer
}

// Probe connects once and closes the connection.
func (p *TCPSocket) Probe(ctx context.Context) (Result, string) {
	d := p.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return Failure, err.Error()
	}
	_ = conn.Close() // the connection proved the point; a close error does not matter
	return Success, ""
}
