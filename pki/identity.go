package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
)

// Role is what a certificate's holder is to the cluster.
type Role string

// Roles.
const (
	RoleServer Role = "server"
	RoleNode   Role = "node"
	RoleAdmin  Role = "admin"
	RoleView   Role = "view"
)

// ServerName is the DNS name every server certificate carries and every
// client asks for.
const ServerName = "corral-server"

// Organizations of the subjects, one per role.
const (
	orgServers = "system:servers"
	orgNodes   = "system:nodes"
	orgAdmins  = "corral:admins"
	orgViewers = "corral:viewers"

	cnServerPrefix = "system:server:"
	cnNodePrefix   = "system:node:"
)

// Identity is who a certificate says its holder is.
type Identity struct {
	Role Role
	Name string
}

func (id Identity) String() string {
	switch id.Role {
	case RoleServer:
		return cnServerPrefix + id.Name
	case RoleNode:
		return cnNodePrefix + id.Name
	}
	return fmt.Sprintf("%s (%s)", id.Name, id.Role)
}

// ErrNoIdentity means a certificate's subject names no corral identity.
var ErrNoIdentity = errors.New("the certificate names no corral identity")

// subject is the certificate subject of id.
func (id Identity) subject() (pkix.Name, error) {
	if id.Name == "" {
		return pkix.Name{}, errors.New("identity: empty name")
	}
	switch id.Role {
	case RoleServer:
		return pkix.Name{CommonName: cnServerPrefix + id.Name, Organization: []string{orgServers}}, nil
	case RoleNode:
		return pkix.Name{CommonName: cnNodePrefix + id.Name, Organization: []string{orgNodes}}, nil
	case RoleAdmin:
		return pkix.Name{CommonName: id.Name, Organization: []string{orgAdmins}}, nil
	case RoleView:
		return pkix.Name{CommonName: id.Name, Organization: []string{orgViewers}}, nil
	}
	return pkix.Name{}, fmt.Errorf("identity %q: unknown role %q (want server, node, admin or view)", id.Name, id.Role)
}

// IdentityOf reads the identity a (verified) certificate carries.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil || len(cert.Subject.Organization) != 1 {
		return Identity{}, ErrNoIdentity
	}
	cn := cert.Subject.CommonName
	switch cert.Subject.Organization[0] {
	case orgServers:
		if name, ok := strings.CutPrefix(cn, cnServerPrefix); ok && name != "" {
			return Identity{Role: RoleServer, Name: name}, nil
		}
	case orgNodes:
		if name, ok := strings.CutPrefix(cn, cnNodePrefix); ok && name != "" {
			return Identity{Role: RoleNode, Name: name}, nil
		}
	case orgAdmins:
		if cn != "" {
			return Identity{Role: RoleAdmin, Name: cn}, nil
		}
	case orgViewers:
		if cn != "" {
			return Identity{Role: RoleView, Name: cn}, nil
		}
	}
	return Identity{}, ErrNoIdentity
}

// ParseRole parses a role given on a command line or in a request.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleServer, RoleNode, RoleAdmin, RoleView:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want server, node, admin or view", s)
}
