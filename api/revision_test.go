package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestRevisionDataRoundTrip(t *testing.T) {
	tpl := &corralpb.PodTemplateSpec{
		Metadata: &corralpb.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec: &corralpb.PodSpec{Containers: []*corralpb.Container{{Name: "c", Image: "nginx:1.25",
			Ports: []*corralpb.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}}}},
	}
	data, err := RevisionData(tpl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"$patch":"replace"`) || !strings.Contains(string(data), `"containerPort":80`) {
		t.Fatalf("revision data %s", data)
	}
	back, err := TemplateFromRevision(&corralpb.ControllerRevision{Metadata: &corralpb.ObjectMeta{Name: "r"}, Data: &corralpb.RawExtension{Raw: data}})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, tpl) {
		t.Fatalf("round trip: %v, want %v", back, tpl)
	}
	if _, err := TemplateFromRevision(&corralpb.ControllerRevision{Metadata: &corralpb.ObjectMeta{Name: "bad"}, Data: &corralpb.RawExtension{Raw: []byte(`{}`)}}); err == nil {
		t.Fatal("empty revision decoded")
	}
}
