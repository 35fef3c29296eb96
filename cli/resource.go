package cli

import (
	"fmt"
	"strings"

	"github.com/corral-dev/corral/api"
)

// selection is one resource type named on the command line and the object
// names given for it (none means "all of that type").
type selection struct {
	kind  api.Kind
	names []string
}

// lookupKind resolves a resource type as kubectl does, with kubectl's error
// for an unknown one.
func lookupKind(name string) (api.Kind, error) {
	k, ok := api.LookupKind(name)
	if !ok {
		return api.Kind{}, fmt.Errorf("the server doesn't have a resource type %q", name)
	}
	return k, nil
}

// parseResourceArgs parses kubectl's resource arguments:
//
//	TYPE                  every object of TYPE
//	TYPE NAME [NAME...]   named objects
//	TYPE1,TYPE2 [NAME...] several types
//	TYPE/NAME [TYPE/NAME...]
//
// Selections keep the order of the command line; a type named twice is
// merged into its first selection.
func parseResourceArgs(args []string) ([]selection, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if strings.Contains(args[0], "/") {
		return parseSlashArgs(args)
	}
	var sels []selection
	for _, t := range strings.Split(args[0], ",") {
		if t == "" {
			return nil, fmt.Errorf("resource type must not be empty in %q", args[0])
		}
		k, err := lookupKind(t)
		if err != nil {
			return nil, err
		}
		sels = addSelection(sels, k, nil)
	}
	for _, name := range args[1:] {
		if strings.Contains(name, "/") {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'corral get resource/<resource_name>' instead of 'corral get resource resource/<resource_name>'")
		}
		if name == "" {
			return nil, fmt.Errorf("object name must not be empty")
		}
		for i := range sels {
			sels[i].names = append(sels[i].names, name)
		}
	}
	return sels, nil
}

// parseSlashArgs parses arguments that are all in TYPE/NAME form.
func parseSlashArgs(args []string) ([]selection, error) {
	var sels []selection
	for _, a := range args {
		typ, name, ok := strings.Cut(a, "/")
		if !ok {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'corral get resource/<resource_name>' instead of 'corral get resource resource/<resource_name>'")
		}
		if typ == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name")
		}
		k, err := lookupKind(typ)
		if err != nil {
			return nil, err
		}
		sels = addSelection(sels, k, []string{name})
	}
	return sels, nil
}

// target is one object a command works on.
type target struct {
	kind      api.Kind
	namespace string
	name      string
}

// addSelection appends names to the selection of kind k, creating it.
func addSelection(sels []selection, k api.Kind, names []string) []selection {
	for i := range sels {
		if sels[i].kind.Kind == k.Kind {
			sels[i].names = append(sels[i].names, names...)
			return sels
		}
	}
	return append(sels, selection{kind: k, names: names})
}

// kindString is how kubectl names a kind in messages: "daemonset.apps",
// "pod", "priorityclass.scheduling.k8s.io".
func kindString(k api.Kind) string {
	s := strings.ToLower(k.Kind)
	if k.Group != "" {
		s += "." + k.Group
	}
	return s
}

// objectRef is kubectl's TYPE/NAME form of an object: "daemonset.apps/x".
func objectRef(k api.Kind, name string) string {
	return kindString(k) + "/" + name
}

// namespaceFor returns the namespace a request for kind k uses: "" for
// cluster-scoped kinds, else ns.
func namespaceFor(k api.Kind, ns string) string {
	if !k.Namespaced {
		return ""
	}
	return ns
}
