package api

import (
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	corralpb "github.com/corral-dev/corral/proto"
)

// The signatures other packages code against (api/CONTRACT.md). A change
// here breaks them; this file makes such a change fail to compile.
var (
	_ func() string                                                                      = Kind{}.APIVersion
	_ func() string                                                                      = Kind{}.GroupResource
	_ func() []Kind                                                                      = Kinds
	_ func(string) (Kind, bool)                                                          = LookupKind
	_ func(string) (Kind, bool)                                                          = KindByName
	_ func(*corralpb.Object) string                                                      = KindOf
	_ func(*corralpb.Object) *corralpb.ObjectMeta                                        = Meta
	_ func(*corralpb.Object) proto.Message                                               = Inner
	_ func(proto.Message) *corralpb.Object                                               = Wrap
	_ func(string) (*corralpb.Object, error)                                             = NewObject
	_ func(*corralpb.Object) *corralpb.ObjectKey                                         = Key
	_ func(*corralpb.Object) string                                                      = Ref
	_ func([]byte, string) ([]*corralpb.Object, error)                                   = Decode
	_ func([]string, bool) ([]*corralpb.Object, error)                                   = DecodeFiles
	_ func(*corralpb.Object) ([]byte, error)                                             = MarshalJSON
	_ func(*corralpb.Object) ([]byte, error)                                             = MarshalJSONIndent
	_ func(*corralpb.Object) ([]byte, error)                                             = MarshalYAML
	_ func([]*corralpb.Object, bool) ([]byte, error)                                     = MarshalList
	_ func(*corralpb.Object) (map[string]any, error)                                     = ToMap
	_ func(*corralpb.Object)                                                             = SetDefaults
	_ func(*corralpb.Object) error                                                       = Validate
	_ func(*corralpb.Object, *corralpb.Object) error                                     = ValidateUpdate
	_ error                                                                              = (*InvalidError)(nil)
	_ func(string) (labels.Selector, error)                                              = ParseSelector
	_ func(*corralpb.LabelSelector) (labels.Selector, error)                             = LabelSelectorAsSelector
	_ func(*corralpb.Node, []*corralpb.NodeSelectorTerm) (bool, error)                   = NodeMatchesSelectorTerms
	_ func(*corralpb.Node, map[string]string) bool                                       = NodeMatchesNodeSelector
	_ func(*corralpb.Toleration, *corralpb.Taint) bool                                   = ToleratesTaint
	_ func([]*corralpb.Taint, []*corralpb.Toleration, ...string) (*corralpb.Taint, bool) = FindUntoleratedTaint
	_ func(*corralpb.IntOrString, int, bool) (int, error)                                = ScaledValue
	_ func(string) (resource.Quantity, error)                                            = ParseQuantity
	_ func(string) (*corralpb.Taint, error)                                              = ParseTaint
)

// InvalidError's fields, as the contract names them.
var _ = InvalidError{Kind: Kind{}, Name: "", Errs: nil}
