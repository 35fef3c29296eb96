package cli

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// describeNamespaceObject renders a namespace.
func describeNamespaceObject(_ *describeEnv, obj *corralpb.Object) (string, error) {
	ns := obj.GetNamespace()
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", ns.GetMetadata().GetName())
	w.labels("Labels", ns.GetMetadata().GetLabels())
	w.annotations("Annotations", ns.GetMetadata().GetAnnotations())
	w.write(0, "Status:\t%s\n", ns.GetStatus().GetPhase())
	return w.String(), nil
}

// describeConfigMapObject fetches the config map's events and renders it.
func describeConfigMapObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	cm := obj.GetConfigMap()
	evs, err := env.eventsFor("ConfigMap", cm.GetMetadata().GetNamespace(), cm.GetMetadata().GetName())
	if err != nil {
		return "", err
	}
	return describeConfigMap(cm, evs, env.showEvents, env.now), nil
}

// describeConfigMap renders a config map: its data in full, binary data as
// sizes.
func describeConfigMap(cm *corralpb.ConfigMap, evs []*corralpb.Event, showEvents bool, now time.Time) string {
	w := newDescribeWriter()
	md := cm.GetMetadata()
	w.write(0, "Name:\t%s\n", md.GetName())
	w.write(0, "Namespace:\t%s\n", md.GetNamespace())
	w.labels("Labels", md.GetLabels())
	w.annotations("Annotations", md.GetAnnotations())
	w.write(0, "\nData\n====\n")
	for _, k := range sortedKeys(cm.GetData()) {
		w.write(0, "%s:\n----\n", k)
		w.write(0, "%s\n", cm.GetData()[k])
		w.write(0, "\n")
	}
	w.write(0, "\nBinaryData\n====\n")
	for _, k := range sortedKeys(cm.GetBinaryData()) {
		w.write(0, "%s: %d bytes\n", k, len(cm.GetBinaryData()[k]))
	}
	w.write(0, "\n")
	if showEvents {
		w.events(evs, now)
	}
	return w.String()
}

// describePriorityClassObject renders a priority class.
func describePriorityClassObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	pc := obj.GetPriorityClass()
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", pc.GetMetadata().GetName())
	w.write(0, "Value:\t%v\n", pc.GetValue())
	w.write(0, "GlobalDefault:\t%v\n", pc.GetGlobalDefault())
	policy := pc.GetPreemptionPolicy()
	if policy == "" {
		policy = "PreemptLowerPriority"
	}
	w.write(0, "PreemptionPolicy:\t%s\n", policy)
	w.write(0, "Description:\t%s\n", pc.GetDescription())
	w.annotations("Annotations", pc.GetMetadata().GetAnnotations())
	evs, err := env.eventsFor("PriorityClass", "", pc.GetMetadata().GetName())
	if err != nil {
		return "", err
	}
	if env.showEvents {
		w.events(evs, env.now)
	}
	return w.String(), nil
}

// describeGeneric renders any object from its JSON, as kubectl's generic
// describer does (Event, ControllerRevision): every field but the
// metadata already shown, sorted, with labels made readable.
func describeGeneric(env *describeEnv, obj *corralpb.Object) (string, error) {
	m, err := api.ToMap(obj)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", api.Ref(obj), err)
	}
	md := api.Meta(obj)
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", md.GetName())
	w.write(0, "Namespace:\t%s\n", md.GetNamespace())
	w.labels("Labels", md.GetLabels())
	w.annotations("Annotations", md.GetAnnotations())
	writeUnstructured(w, 0, m, "", map[string]bool{
		".metadata.managedFields": true, ".metadata.name": true, ".metadata.namespace": true,
		".metadata.labels": true, ".metadata.annotations": true,
	})
	kind := api.KindOf(obj)
	if kind != "Event" && env.showEvents {
		evs, err := env.eventsFor(kind, md.GetNamespace(), md.GetName())
		if err != nil {
			return "", err
		}
		w.events(evs, env.now)
	}
	return w.String(), nil
}

// writeUnstructured writes a JSON map as nested "Label: value" lines.
func writeUnstructured(w *describeWriter, level int, m map[string]any, prefix string, skip map[string]bool) {
	for _, field := range sortedKeys(m) {
		path := prefix + "." + field
		if skip[path] {
			continue
		}
		switch v := m[field].(type) {
		case map[string]any:
			w.write(level, "%s:\n", smartLabel(field))
			writeUnstructured(w, level+1, v, path, skip)
		case []any:
			w.write(level, "%s:\n", smartLabel(field))
			for _, item := range v {
				if im, ok := item.(map[string]any); ok {
					writeUnstructured(w, level+1, im, path, skip)
				} else {
					w.write(level+1, "%s\n", formatValue(item))
				}
			}
		default:
			w.write(level, "%s:\t%s\n", smartLabel(field), formatValue(v))
		}
	}
}

// smartLabel turns a JSON field name into a title: "involvedObject" →
// "Involved Object", "apiVersion" → "API Version", "uid" → "UID".
func smartLabel(field string) string {
	for _, r := range field {
		if !unicode.IsLetter(r) && r != '-' {
			return field
		}
	}
	acronyms := map[string]bool{"API": true, "URL": true, "UID": true, "OSB": true, "GUID": true}
	parts := splitCamel(field)
	for i, p := range parts {
		if acronyms[strings.ToUpper(p)] {
			parts[i] = strings.ToUpper(p)
		} else {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, " ")
}

// splitCamel splits "lastTimestamp" into ["last", "Timestamp"] and
// "HTTPGet" into ["HTTP", "Get"]: a run of capitals stays together unless
// its last capital starts a lower-case word.
func splitCamel(s string) []string {
	rs := []rune(s)
	var parts []string
	start := 0
	for i := 1; i < len(rs); i++ {
		prevUpper, curUpper := unicode.IsUpper(rs[i-1]), unicode.IsUpper(rs[i])
		nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
		if curUpper && (!prevUpper || nextLower) {
			parts = append(parts, string(rs[start:i]))
			start = i
		}
	}
	return append(parts, string(rs[start:]))
}
