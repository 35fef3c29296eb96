package scheduler

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestPlanHistory(t *testing.T) {
	ds := dsFor(nil)
	ds.Metadata.Annotations = map[string]string{changeCauseAnnotation: "first"}
	first, err := planHistory(ds, nil, nil, planNow)
	if err != nil {
		t.Fatal(err)
	}
	r1 := first.Current
	if len(first.Put) != 1 || r1.GetRevision() != 1 || r1.GetMetadata().GetName() != "ds-"+TemplateHash(ds) ||
		r1.GetMetadata().GetLabels()["app"] != "x" || r1.GetMetadata().GetAnnotations()[changeCauseAnnotation] != "first" {
		t.Fatalf("first revision: %v", first.Put)
	}
	// Unchanged template: nothing to do.
	if again, _ := planHistory(ds, []*corralpb.ControllerRevision{r1}, nil, planNow); len(again.Put)+len(again.Delete) != 0 {
		t.Fatalf("unchanged template: %+v", again)
	}
	// A new template makes revision 2.
	ds2 := dsFor(nil)
	ds2.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
	second, _ := planHistory(ds2, []*corralpb.ControllerRevision{r1}, nil, planNow)
	r2 := second.Current
	if len(second.Put) != 1 || r2.GetRevision() != 2 {
		t.Fatalf("second revision: %v", second.Put)
	}
	// Going back (undo) renumbers revision 1 to 3 instead of a new one.
	undo, _ := planHistory(ds, []*corralpb.ControllerRevision{r1, r2}, nil, planNow)
	if len(undo.Put) != 1 || undo.Put[0].GetMetadata().GetName() != r1.GetMetadata().GetName() || undo.Put[0].GetRevision() != 3 {
		t.Fatalf("undo: %v", undo.Put)
	}
	// Another template's revision under the current name is a collision.
	clash := newRevision(ds2, TemplateHash(ds), []byte(`{"other":true}`), 7, planNow)
	if c, _ := planHistory(ds, []*corralpb.ControllerRevision{clash}, nil, planNow); !c.Collision {
		t.Fatal("name collision not reported")
	}
	// History beyond the limit goes, oldest first, except revisions live
	// pods use.
	var revs []*corralpb.ControllerRevision
	for i := int64(1); i <= 5; i++ {
		r := newRevision(ds2, "h"+string(rune('0'+i)), []byte("{}"), i, planNow)
		r.Metadata.Name = "ds-old" + string(rune('0'+i))
		revs = append(revs, r)
	}
	limit := int32(2)
	ds3 := dsFor(nil)
	ds3.Spec.RevisionHistoryLimit = &limit
	trim, _ := planHistory(ds3, revs, map[string]bool{"h1": true}, planNow)
	var gone []string
	for _, r := range trim.Delete {
		gone = append(gone, r.GetMetadata().GetName())
	}
	if len(gone) != 2 || gone[0] != "ds-old2" || gone[1] != "ds-old3" {
		t.Fatalf("trimmed %v, want [ds-old2 ds-old3] (old1 is in use)", gone)
	}
}
