package api

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

// InvalidError reports every problem Validate or ValidateUpdate found in an
// object, each with its field path. Its text is the API server's as kubectl
// prints it.
type InvalidError struct {
	// Kind is the kind of the invalid object.
	Kind Kind
	// Name is the object's name (its generateName when it has no name).
	Name string
	// Errs are the problems, in the order they were found.
	Errs field.ErrorList
}

// Error returns `DaemonSet.apps "x" is invalid: spec.selector: Required value`
// for one problem and `... is invalid: [first, second]` for several.
func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s %q is invalid: %v", e.Kind.qualifiedKind(), e.Name, e.Errs.ToAggregate())
}

// ErrEmptyObject is returned for an Object with no kind set.
var ErrEmptyObject = errors.New("object has no kind")

// Messages shared with Kubernetes.
const (
	immutableMsg   = "field is immutable"
	nonNegativeMsg = "must be greater than or equal to 0"
)

// Validate checks an object against Kubernetes' rules for its kind. It
// expects a defaulted object (SetDefaults) but accepts the empty values that
// defaulting would fill. It returns nil or an *InvalidError.
func Validate(o *corralpb.Object) error {
	k, ok := kindInfo(o)
	if !ok {
		return fmt.Errorf("validate: %w", ErrEmptyObject)
	}
	return invalid(k, o, validateObject(k, o))
}

// ValidateUpdate checks newObj as Validate does, and that the update changes
// no immutable field of oldObj: metadata name, namespace and uid (a uid left
// empty in newObj is not a change), a DaemonSet's selector, a pod's spec,
// and the data of a ConfigMap marked immutable. It returns nil, an *InvalidError, or an
// error when the two objects are of different kinds.
func ValidateUpdate(newObj, oldObj *corralpb.Object) error {
	k, ok := kindInfo(newObj)
	if !ok {
		return fmt.Errorf("validate update: %w", ErrEmptyObject)
	}
	if KindOf(oldObj) != k.Kind {
		return fmt.Errorf("validate update: kind %s cannot replace %q", k.Kind, KindOf(oldObj))
	}
	errs := validateObject(k, newObj)
	errs = append(errs, validateMetaUpdate(peekMeta(newObj), peekMeta(oldObj))...)
	switch v := newObj.GetKind().(type) {
	case *corralpb.Object_DaemonSet:
		errs = append(errs, validateDaemonSetUpdate(v.DaemonSet, oldObj.GetDaemonSet())...)
	case *corralpb.Object_ConfigMap:
		errs = append(errs, validateConfigMapUpdate(v.ConfigMap, oldObj.GetConfigMap())...)
	case *corralpb.Object_Node:
		errs = append(errs, validateNodeUpdate(v.Node, oldObj.GetNode())...)
	case *corralpb.Object_Pod:
		errs = append(errs, validatePodUpdate(v.Pod, oldObj.GetPod())...)
	}
	return invalid(k, newObj, errs)
}

// invalid wraps errs into an *InvalidError, or returns nil for no errors.
func invalid(k Kind, o *corralpb.Object, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	md := peekMeta(o)
	name := md.GetName()
	if name == "" {
		name = md.GetGenerateName()
	}
	return &InvalidError{Kind: k, Name: name, Errs: errs}
}

func validateObject(k Kind, o *corralpb.Object) field.ErrorList {
	metaPath := field.NewPath("metadata")
	nameFn := validation.IsDNS1123Subdomain
	if k.Kind == "Namespace" {
		nameFn = validation.IsDNS1123Label
	}
	errs := validateObjectMeta(peekMeta(o), k.Namespaced, nameFn, metaPath)
	switch v := o.GetKind().(type) {
	case *corralpb.Object_DaemonSet:
		errs = append(errs, validateDaemonSetSpec(v.DaemonSet.GetSpec(), field.NewPath("spec"))...)
	case *corralpb.Object_Pod:
		errs = append(errs, validatePodSpec(v.Pod.GetSpec(), field.NewPath("spec"), podRestartPolicies)...)
	case *corralpb.Object_Node:
		errs = append(errs, validateNode(v.Node)...)
	case *corralpb.Object_ConfigMap:
		errs = append(errs, validateConfigMap(v.ConfigMap)...)
	case *corralpb.Object_Namespace:
		errs = append(errs, validateNamespace(v.Namespace)...)
	case *corralpb.Object_PriorityClass:
		errs = append(errs, validatePriorityClass(v.PriorityClass)...)
	case *corralpb.Object_Event:
		errs = append(errs, validateEvent(v.Event)...)
	case *corralpb.Object_ControllerRevision:
		errs = append(errs, validateControllerRevision(v.ControllerRevision)...)
	}
	return errs
}

// nameFunc checks a name and returns the problems found.
type nameFunc func(string) []string

// prefixName checks a generateName prefix: the name rules, allowing a
// trailing dash (the generated suffix follows it).
func prefixName(fn nameFunc, prefix string) []string {
	if len(prefix) > 1 && strings.HasSuffix(prefix, "-") {
		prefix = prefix[:len(prefix)-1] + "a"
	}
	return fn(prefix)
}

func validateObjectMeta(md *corralpb.ObjectMeta, namespaced bool, nameFn nameFunc, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if gn := md.GetGenerateName(); gn != "" {
		for _, msg := range prefixName(nameFn, gn) {
			errs = append(errs, field.Invalid(path.Child("generateName"), gn, msg))
		}
	}
	switch {
	case md.GetName() == "" && md.GetGenerateName() == "":
		errs = append(errs, field.Required(path.Child("name"), "name or generateName is required"))
	case md.GetName() != "":
		errs = append(errs, invalidEach(path.Child("name"), md.GetName(), nameFn(md.GetName()))...)
	}
	ns := md.GetNamespace()
	switch {
	case namespaced && ns == "":
		errs = append(errs, field.Required(path.Child("namespace"), ""))
	case namespaced:
		errs = append(errs, invalidEach(path.Child("namespace"), ns, validation.IsDNS1123Label(ns))...)
	case ns != "":
		errs = append(errs, field.Forbidden(path.Child("namespace"), "not allowed on this type"))
	}
	if md.GetGeneration() < 0 {
		errs = append(errs, field.Invalid(path.Child("generation"), md.GetGeneration(), nonNegativeMsg))
	}
	errs = append(errs, validateLabels(md.GetLabels(), path.Child("labels"))...)
	errs = append(errs, validateAnnotations(md.GetAnnotations(), path.Child("annotations"))...)
	errs = append(errs, validateOwnerReferences(md.GetOwnerReferences(), path.Child("ownerReferences"))...)
	for _, f := range md.GetFinalizers() {
		errs = append(errs, invalidEach(path.Child("finalizers"), f, validation.IsQualifiedName(f))...)
	}
	return errs
}

// validateLabels checks label keys and values (also used for selectors'
// matchLabels and nodeSelector).
func validateLabels(labels map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(labels) {
		errs = append(errs, invalidEach(path, k, validation.IsQualifiedName(k))...)
		errs = append(errs, invalidEach(path, labels[k], validation.IsValidLabelValue(labels[k]))...)
	}
	return errs
}

// totalAnnotationSizeLimit is Kubernetes' limit on all annotations together.
const totalAnnotationSizeLimit = 256 * 1024

func validateAnnotations(annotations map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range sortedKeys(annotations) {
		errs = append(errs, invalidEach(path, k, validation.IsQualifiedName(strings.ToLower(k)))...)
		size += len(k) + len(annotations[k])
	}
	if size > totalAnnotationSizeLimit {
		errs = append(errs, field.TooLong(path, "", totalAnnotationSizeLimit))
	}
	return errs
}

func validateOwnerReferences(refs []*corralpb.OwnerReference, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	controller := ""
	for i, r := range refs {
		p := path.Index(i)
		for _, req := range []struct{ name, val string }{
			{"apiVersion", r.GetApiVersion()}, {"kind", r.GetKind()}, {"name", r.GetName()}, {"uid", r.GetUid()},
		} {
			if req.val == "" {
				errs = append(errs, field.Required(p.Child(req.name), "must not be empty"))
			}
		}
		if r.GetController() {
			this := r.GetKind() + "/" + r.GetName()
			if controller != "" {
				errs = append(errs, field.Invalid(path, this, fmt.Sprintf(
					"Only one reference can have Controller set to true. Found \"true\" in references for %s and %s", controller, this)))
			}
			controller = this
		}
	}
	return errs
}

func validateMetaUpdate(newMeta, oldMeta *corralpb.ObjectMeta) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("metadata")
	if newMeta.GetName() != oldMeta.GetName() {
		errs = append(errs, field.Invalid(path.Child("name"), newMeta.GetName(), immutableMsg))
	}
	if newMeta.GetNamespace() != oldMeta.GetNamespace() {
		errs = append(errs, field.Invalid(path.Child("namespace"), newMeta.GetNamespace(), immutableMsg))
	}
	if newMeta.GetUid() != "" && newMeta.GetUid() != oldMeta.GetUid() {
		errs = append(errs, field.Invalid(path.Child("uid"), newMeta.GetUid(), immutableMsg))
	}
	return errs
}

// invalidEach turns each message of a validation helper into an Invalid
// error for value at path.
func invalidEach(path *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

// nonNegative reports a negative value.
func nonNegative[T int32 | int64](path *field.Path, v T) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(path, int64(v), nonNegativeMsg)}
	}
	return nil
}

// supported reports a value outside of the allowed ones. The empty value is
// allowed when emptyOK (a field that defaulting fills).
func supported(path *field.Path, v string, emptyOK bool, allowed ...string) field.ErrorList {
	if v == "" && emptyOK {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return field.ErrorList{field.NotSupported(path, v, allowed)}
}

// sortedKeys returns a map's keys in order, so errors come out stably.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
