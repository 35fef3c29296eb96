package api

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestParseSelector(t *testing.T) {
	set := labels.Set{"app": "web", "tier": "front", "env": "prod", "cores": "8"}
	tests := []struct {
		sel     string
		match   bool
		wantErr bool
	}{
		{"", true, false},
		{"app=web", true, false},
		{"app==web", true, false},
		{"app!=web", false, false},
		{"app=web,tier=back", false, false},
		{"env in (prod,qa)", true, false},
		{"env notin (prod)", false, false},
		{"tier", true, false},
		{"!canary", true, false},
		{"!app", false, false},
		{"cores>4", true, false},
		{"cores<4", false, false},
		{"app=web,env in (prod, qa),!canary", true, false},
		{"app=", false, false},
		{"app in (", false, true},
		{"a b", false, true},
		{"app=web=x", false, true},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSelector(%q) error = %v, want error %v", tt.sel, err, tt.wantErr)
			continue
		}
		if err == nil && sel.Matches(set) != tt.match {
			t.Errorf("ParseSelector(%q).Matches = %v, want %v", tt.sel, !tt.match, tt.match)
		}
	}
}

func TestLabelSelectorAsSelector(t *testing.T) {
	set := labels.Set{"app": "web", "env": "prod"}
	expr := func(key, op string, values ...string) *corralpb.LabelSelectorRequirement {
		return &corralpb.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	tests := []struct {
		name    string
		ls      *corralpb.LabelSelector
		match   bool
		str     string
		wantErr bool
	}{
		{"nil selects nothing", nil, false, "", false},
		{"empty selects everything", &corralpb.LabelSelector{}, true, "", false},
		{"matchLabels", &corralpb.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true, "app=web", false},
		{"matchLabels miss", &corralpb.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false, "app=db", false},
		{"In", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("env", "In", "qa", "prod")}}, true, "env in (prod,qa)", false},
		{"NotIn", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("env", "NotIn", "prod")}}, false, "env notin (prod)", false},
		{"Exists", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("app", "Exists")}}, true, "app", false},
		{"DoesNotExist", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("canary", "DoesNotExist")}}, true, "!canary", false},
		{"ANDed", &corralpb.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("env", "NotIn", "prod")}}, false, "app=web,env notin (prod)", false},
		{"bad operator", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("env", "Gt", "1")}}, false, "", true},
		{"In without values", &corralpb.LabelSelector{MatchExpressions: []*corralpb.LabelSelectorRequirement{expr("env", "In")}}, false, "", true},
		{"bad key", &corralpb.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}, false, "", true},
	}
	for _, tt := range tests {
		sel, err := LabelSelectorAsSelector(tt.ls)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error = %v", tt.name, err)
			continue
		}
		if err != nil {
			continue
		}
		if sel.Matches(set) != tt.match || sel.String() != tt.str {
			t.Errorf("%s: Matches = %v, String = %q; want %v, %q", tt.name, sel.Matches(set), sel.String(), tt.match, tt.str)
		}
	}
}

func TestNodeMatchesNodeSelector(t *testing.T) {
	node := &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n", Labels: map[string]string{"disktype": "ssd", "zone": "a"}}}
	tests := []struct {
		sel  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"disktype": "ssd"}, true},
		{map[string]string{"disktype": "ssd", "zone": "a"}, true},
		{map[string]string{"disktype": "hdd"}, false},
		{map[string]string{"gpu": ""}, false},
	}
	for _, tt := range tests {
		if got := NodeMatchesNodeSelector(node, tt.sel); got != tt.want {
			t.Errorf("NodeMatchesNodeSelector(%v) = %v", tt.sel, got)
		}
	}
	if !NodeMatchesNodeSelector(&corralpb.Node{}, nil) || NodeMatchesNodeSelector(nil, map[string]string{"a": "b"}) {
		t.Error("nodes without labels")
	}
}

func TestNodeMatchesSelectorTerms(t *testing.T) {
	node := &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "node-1", Labels: map[string]string{
		"environment": "production", "cores": "8", "disktype": "ssd",
	}}}
	term := func(exprs, fields []*corralpb.NodeSelectorRequirement) *corralpb.NodeSelectorTerm {
		return &corralpb.NodeSelectorTerm{MatchExpressions: exprs, MatchFields: fields}
	}
	reqs := func(r ...*corralpb.NodeSelectorRequirement) []*corralpb.NodeSelectorRequirement { return r }
	tests := []struct {
		name    string
		terms   []*corralpb.NodeSelectorTerm
		want    bool
		wantErr bool
	}{
		{"no terms", nil, false, false},
		{"empty term matches nothing", []*corralpb.NodeSelectorTerm{{}}, false, false},
		{"seed affinity", []*corralpb.NodeSelectorTerm{term(reqs(req("environment", "In", "production", "staging")), nil)}, true, false},
		{"In miss", []*corralpb.NodeSelectorTerm{term(reqs(req("environment", "In", "staging")), nil)}, false, false},
		{"NotIn", []*corralpb.NodeSelectorTerm{term(reqs(req("environment", "NotIn", "staging")), nil)}, true, false},
		{"NotIn on missing label", []*corralpb.NodeSelectorTerm{term(reqs(req("gpu", "NotIn", "x")), nil)}, true, false},
		{"Exists", []*corralpb.NodeSelectorTerm{term(reqs(req("disktype", "Exists")), nil)}, true, false},
		{"DoesNotExist", []*corralpb.NodeSelectorTerm{term(reqs(req("disktype", "DoesNotExist")), nil)}, false, false},
		{"Gt", []*corralpb.NodeSelectorTerm{term(reqs(req("cores", "Gt", "4")), nil)}, true, false},
		{"Gt is numeric, not lexical", []*corralpb.NodeSelectorTerm{term(reqs(req("cores", "Gt", "10")), nil)}, false, false},
		{"Lt", []*corralpb.NodeSelectorTerm{term(reqs(req("cores", "Lt", "16")), nil)}, true, false},
		{"Gt on non-integer label", []*corralpb.NodeSelectorTerm{term(reqs(req("disktype", "Gt", "1")), nil)}, false, false},
		{"requirements ANDed", []*corralpb.NodeSelectorTerm{term(reqs(req("cores", "Gt", "4"), req("disktype", "In", "hdd")), nil)}, false, false},
		{"terms ORed", []*corralpb.NodeSelectorTerm{
			term(reqs(req("disktype", "In", "hdd")), nil),
			term(reqs(req("cores", "Gt", "4")), nil),
		}, true, false},
		{"matchFields In", []*corralpb.NodeSelectorTerm{term(nil, reqs(req("metadata.name", "In", "node-1")))}, true, false},
		{"matchFields In miss", []*corralpb.NodeSelectorTerm{term(nil, reqs(req("metadata.name", "In", "node-2")))}, false, false},
		{"matchFields NotIn", []*corralpb.NodeSelectorTerm{term(nil, reqs(req("metadata.name", "NotIn", "node-2")))}, true, false},
		{"fields and labels ANDed", []*corralpb.NodeSelectorTerm{
			term(reqs(req("disktype", "Exists")), reqs(req("metadata.name", "In", "node-2"))),
		}, false, false},
		{"bad operator errors", []*corralpb.NodeSelectorTerm{term(reqs(req("a", "Equals", "b")), nil)}, false, true},
		{"bad Gt value errors", []*corralpb.NodeSelectorTerm{term(reqs(req("cores", "Gt", "x")), nil)}, false, true},
		{"bad field operator errors", []*corralpb.NodeSelectorTerm{term(nil, reqs(req("metadata.name", "Exists")))}, false, true},
		{"bad term skipped when another matches", []*corralpb.NodeSelectorTerm{
			term(reqs(req("a", "Equals", "b")), nil),
			term(reqs(req("disktype", "In", "ssd")), nil),
		}, true, false},
	}
	for _, tt := range tests {
		got, err := NodeMatchesSelectorTerms(node, tt.terms)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: got %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	unnamed := &corralpb.Node{Metadata: &corralpb.ObjectMeta{}}
	if ok, _ := NodeMatchesSelectorTerms(unnamed, []*corralpb.NodeSelectorTerm{term(nil, reqs(req("metadata.name", "In", "x")))}); !ok {
		t.Error("as in Kubernetes, matchFields is not applied to a node without fields")
	}
	if ok, _ := NodeMatchesSelectorTerms(nil, []*corralpb.NodeSelectorTerm{term(reqs(req("a", "Exists")), nil)}); ok {
		t.Error("nil node matched")
	}
}
