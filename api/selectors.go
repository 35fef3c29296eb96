package api

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

// ParseSelector parses a label selector as kubectl's -l flag takes it:
// equality-based ("app=web,tier!=db") and set-based ("env in (prod,qa),
// !canary") requirements, ANDed. The empty string selects everything.
func ParseSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse selector %q: %w", s, err)
	}
	return sel, nil
}

// LabelSelectorAsSelector converts a LabelSelector as Kubernetes does: a nil
// selector selects nothing, an empty one everything; matchLabels and
// matchExpressions (In, NotIn, Exists, DoesNotExist) are ANDed.
func LabelSelectorAsSelector(ls *corralpb.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	if len(ls.MatchLabels)+len(ls.MatchExpressions) == 0 {
		return labels.Everything(), nil
	}
	reqs := make([]labels.Requirement, 0, len(ls.MatchLabels)+len(ls.MatchExpressions))
	for _, k := range sortedKeys(ls.MatchLabels) {
		r, err := labels.NewRequirement(k, selection.Equals, []string{ls.MatchLabels[k]})
		if err != nil {
			return nil, fmt.Errorf("label selector: %w", err)
		}
		reqs = append(reqs, *r)
	}
	for _, expr := range ls.MatchExpressions {
		var op selection.Operator
		switch expr.GetOperator() {
		case "In":
			op = selection.In
		case "NotIn":
			op = selection.NotIn
		case "Exists":
			op = selection.Exists
		case "DoesNotExist":
			op = selection.DoesNotExist
		default:
			return nil, fmt.Errorf("label selector: %q is not a valid label selector operator", expr.GetOperator())
		}
		r, err := labels.NewRequirement(expr.GetKey(), op, append([]string(nil), expr.GetValues()...))
		if err != nil {
			return nil, fmt.Errorf("label selector: %w", err)
		}
		reqs = append(reqs, *r)
	}
	return labels.NewSelector().Add(reqs...), nil
}

// NodeMatchesNodeSelector reports whether the node has every label of sel
// with the same value (a pod's spec.nodeSelector). An empty sel matches
// every node.
func NodeMatchesNodeSelector(node *corralpb.Node, sel map[string]string) bool {
	nodeLabels := node.GetMetadata().GetLabels()
	for k, v := range sel {
		if got, ok := nodeLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// nodeMetadataName is the one node field a matchFields requirement may use.
const nodeMetadataName = "metadata.name"

// NodeMatchesSelectorTerms reports whether the node matches node selector
// terms as Kubernetes' node affinity does: the terms are ORed, the
// requirements inside a term ANDed, a term with no requirements matches
// nothing, Gt and Lt compare integers, and matchFields may test
// metadata.name. A term that cannot be parsed is skipped; its error is
// returned only when no other term matches.
func NodeMatchesSelectorTerms(node *corralpb.Node, terms []*corralpb.NodeSelectorTerm) (bool, error) {
	if node == nil {
		return false, nil
	}
	nodeLabels := labels.Set(node.GetMetadata().GetLabels())
	nodeFields := map[string]string{}
	if name := node.GetMetadata().GetName(); name != "" {
		nodeFields[nodeMetadataName] = name
	}
	var errs []error
	for i, t := range terms {
		ok, err := termMatches(t, field.NewPath("nodeSelectorTerms").Index(i), nodeLabels, nodeFields)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}

func termMatches(t *corralpb.NodeSelectorTerm, path *field.Path, nodeLabels labels.Set, nodeFields map[string]string) (bool, error) {
	if len(t.GetMatchExpressions()) == 0 && len(t.GetMatchFields()) == 0 {
		return false, nil
	}
	var sel labels.Selector
	var errs []error
	if len(t.GetMatchExpressions()) > 0 {
		var err error
		sel, err = nodeRequirementsAsSelector(t.GetMatchExpressions(), path.Child("matchExpressions"))
		if err != nil {
			errs = append(errs, err)
		}
	}
	fieldReqs, err := nodeFieldRequirements(t.GetMatchFields(), path.Child("matchFields"))
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return false, errors.Join(errs...)
	}
	if sel != nil && !sel.Matches(nodeLabels) {
		return false, nil
	}
	if len(fieldReqs) > 0 && len(nodeFields) > 0 {
		for _, r := range fieldReqs {
			if (nodeFields[r.key] == r.value) != r.equal {
				return false, nil
			}
		}
	}
	return true, nil
}

// nodeRequirementsAsSelector converts a term's matchExpressions to a label
// selector; Gt and Lt become integer comparisons.
func nodeRequirementsAsSelector(reqs []*corralpb.NodeSelectorRequirement, path *field.Path) (labels.Selector, error) {
	sel := labels.NewSelector()
	var errs []error
	for i, r := range reqs {
		p := path.Index(i)
		var op selection.Operator
		switch r.GetOperator() {
		case "In":
			op = selection.In
		case "NotIn":
			op = selection.NotIn
		case "Exists":
			op = selection.Exists
		case "DoesNotExist":
			op = selection.DoesNotExist
		case "Gt":
			op = selection.GreaterThan
		case "Lt":
			op = selection.LessThan
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), r.GetOperator(),
				[]string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}))
			continue
		}
		req, err := labels.NewRequirement(r.GetKey(), op, append([]string(nil), r.GetValues()...), field.WithPath(p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sel = sel.Add(*req)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sel, nil
}

// fieldRequirement is one parsed matchFields requirement: the field must
// (equal) or must not (!equal) have value.
type fieldRequirement struct {
	key, value string
	equal      bool
}

func nodeFieldRequirements(reqs []*corralpb.NodeSelectorRequirement, path *field.Path) ([]fieldRequirement, error) {
	var out []fieldRequirement
	var errs field.ErrorList
	for i, r := range reqs {
		p := path.Index(i)
		switch r.GetOperator() {
		case "In", "NotIn":
			if len(r.GetValues()) != 1 {
				errs = append(errs, field.Invalid(p.Child("values"), r.GetValues(), "must have one element"))
				continue
			}
			out = append(out, fieldRequirement{key: r.GetKey(), value: r.GetValues()[0], equal: r.GetOperator() == "In"})
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), r.GetOperator(), []string{"In", "NotIn"}))
		}
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return out, nil
}
