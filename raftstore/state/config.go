package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

// systemNamespaces are the namespaces a ClusterConfig entry creates when
// they are missing, as a new Kubernetes cluster has them.
var systemNamespaces = []string{"default", "kube-system", "kube-public"}

// putClusterConfig stores the cluster config and creates the system
// namespaces that do not exist yet.
func (w *writer) putClusterConfig(cfg *corralpb.ClusterConfig) error {
	if err := w.txn.Insert(tableMeta, proto.Clone(cfg)); err != nil {
		return fmt.Errorf("put cluster config: %w", err)
	}
	for _, name := range systemNamespaces {
		existing, err := w.get(kindNamespace, "", name)
		if err != nil {
			return err
		}
		if existing != nil {
			continue
		}
		ns := systemNamespace(cfg, name, w.rv)
		if err := w.txn.Insert(kindNamespace.name, ns); err != nil {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
		w.touched.add(kindNamespace)
		w.events = append(w.events, Event{Type: EventAdded, Index: w.index, Object: ns})
	}
	return nil
}

// systemNamespace builds a namespace object from the cluster config alone,
// so that every server builds the same one.
func systemNamespace(cfg *corralpb.ClusterConfig, name, rv string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_Namespace{Namespace: &corralpb.Namespace{
		ApiVersion: "v1",
		Kind:       "Namespace",
		Metadata: &corralpb.ObjectMeta{
			Name:              name,
			Uid:               namespaceUID(cfg.GetClusterId(), name),
			ResourceVersion:   rv,
			CreationTimestamp: &timestamppb.Timestamp{Seconds: cfg.GetCreatedUnix()},
		},
		Status: &corralpb.NamespaceStatus{Phase: "Active"},
	}}}
}

// namespaceUID derives a UUID-formatted uid from a cluster id and a
// name: the first 16 bytes of SHA-256(clusterID NUL name), marked as an
// RFC 9562 version 8 (custom) UUID.
func namespaceUID(clusterID, name string) string {
	sum := sha256.Sum256([]byte(clusterID + "\x00" + name))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}
