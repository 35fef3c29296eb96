package framework

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// assignmentsCodec is the simulated agents' codec for their assignments
// stream. It decodes only what a SimAgent reads of each message: whether
// it is the full set, and of each item either the pod (its namespace,
// name, uid, node name, hostNetwork, and its containers' names and
// images) or the key of a removed object; ConfigMaps and routes are
// skipped. A real agent decodes everything; thousands of simulated ones
// share the machine's CPU with the servers they measure, and a pod's
// tolerations, affinity and labels are most of the decoding. Everything
// else (the request) goes through gRPC's proto codec.
type assignmentsCodec struct{ encoding.CodecV2 }

func newAssignmentsCodec() assignmentsCodec {
	return assignmentsCodec{encoding.GetCodecV2("proto")}
}

func (c assignmentsCodec) Unmarshal(data mem.BufferSlice, v any) error {
	msg, ok := v.(*corralpb.AssignmentsMessage)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeAssignments(buf.ReadOnlyData(), msg)
}

// fields calls fn for each field of the protobuf message b: its number,
// wire type and, for varints, the value and, for length-delimited
// fields, the bytes. Other wire types are skipped.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// decodeAssignments fills msg from b as assignmentsCodec describes.
func decodeAssignments(b []byte, msg *corralpb.AssignmentsMessage) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			msg.Complete = v != 0
		case num == 2 && typ == protowire.BytesType:
			it, err := decodeAssignment(bs)
			if err != nil {
				return fmt.Errorf("assignments: item %d: %w", len(msg.Items), err)
			}
			if it != nil {
				msg.Items = append(msg.Items, it)
			}
		case num == 3 && typ == protowire.BytesType:
			msg.ResourceVersion = string(bs)
		}
		return nil
	})
}

// decodeAssignment returns a pod or a removal, nil for anything else.
func decodeAssignment(b []byte) (*corralpb.Assignment, error) {
	var it *corralpb.Assignment
	err := fields(b, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			pod, err := decodePod(bs)
			if err != nil {
				return fmt.Errorf("pod: %w", err)
			}
			it = &corralpb.Assignment{Item: &corralpb.Assignment_Pod{Pod: pod}}
		case 3:
			key := &corralpb.ObjectKey{}
			if err := proto.Unmarshal(bs, key); err != nil {
				return fmt.Errorf("removed: %w", err)
			}
			it = &corralpb.Assignment{Item: &corralpb.Assignment_Removed{Removed: key}}
		}
		return nil
	})
	return it, err
}

func decodePod(b []byte) (*corralpb.Pod, error) {
	pod := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{}, Spec: &corralpb.PodSpec{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 3:
			return fields(bs, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
				if typ != protowire.BytesType {
					return nil
				}
				switch num {
				case 1:
					pod.Metadata.Name = string(bs)
				case 3:
					pod.Metadata.Namespace = string(bs)
				case 4:
					pod.Metadata.Uid = string(bs)
				}
				return nil
			})
		case 4:
			return decodePodSpec(bs, pod.Spec)
		}
		return nil
	})
	return pod, err
}

func decodePodSpec(b []byte, spec *corralpb.PodSpec) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == 3 && typ == protowire.BytesType:
			c := &corralpb.Container{}
			spec.Containers = append(spec.Containers, c)
			return fields(bs, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
				if typ != protowire.BytesType {
					return nil
				}
				switch num {
				case 1:
					c.Name = string(bs)
				case 2:
					c.Image = string(bs)
				}
				return nil
			})
		case num == 10 && typ == protowire.BytesType:
			spec.NodeName = string(bs)
		case num == 11 && typ == protowire.VarintType:
			spec.HostNetwork = v != 0
		}
		return nil
	})
}
