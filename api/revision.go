package api

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// RevisionData is a ControllerRevision's data for a DaemonSet template, as
// Kubernetes stores it: {"spec":{"template":{...},"$patch":"replace"}}.
func RevisionData(tpl *corralpb.PodTemplateSpec) ([]byte, error) {
	obj := Wrap(&corralpb.DaemonSet{Metadata: &corralpb.ObjectMeta{Name: "x"},
		Spec: &corralpb.DaemonSetSpec{Template: proto.Clone(tpl).(*corralpb.PodTemplateSpec)}})
	m, err := ToMap(obj)
	if err != nil {
		return nil, fmt.Errorf("encode revision: %w", err)
	}
	spec, _ := m["spec"].(map[string]any)
	data := map[string]any{"spec": map[string]any{"template": spec["template"], "$patch": "replace"}}
	out, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode revision: %w", err)
	}
	return out, nil
}

// TemplateFromRevision decodes the template RevisionData stored.
func TemplateFromRevision(cr *corralpb.ControllerRevision) (*corralpb.PodTemplateSpec, error) {
	var data struct {
		Spec struct {
			Template json.RawMessage `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cr.GetData().GetRaw(), &data); err != nil || len(data.Spec.Template) == 0 {
		return nil, fmt.Errorf("controllerrevision %q holds no DaemonSet template", cr.GetMetadata().GetName())
	}
	doc := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"x"},"spec":{"template":%s}}`, data.Spec.Template)
	objs, err := Decode([]byte(doc), "controllerrevision "+cr.GetMetadata().GetName())
	if err != nil || len(objs) != 1 {
		return nil, fmt.Errorf("decode controllerrevision %q: %w", cr.GetMetadata().GetName(), err)
	}
	return objs[0].GetDaemonSet().GetSpec().GetTemplate(), nil
}
