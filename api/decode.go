package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	corralpb "github.com/corral-dev/corral/proto"
)

// NoKindMatchError reports a manifest whose apiVersion and kind name no kind
// of the model. Its text is kubectl's.
type NoKindMatchError struct {
	// Kind is the manifest's kind.
	Kind string
	// APIVersion is the manifest's apiVersion.
	APIVersion string
}

// Error implements error.
func (e *NoKindMatchError) Error() string {
	if e.APIVersion == "" {
		return fmt.Sprintf("no matches for kind %q", e.Kind)
	}
	return fmt.Sprintf("no matches for kind %q in version %q", e.Kind, e.APIVersion)
}

// fieldErrors is the list of problems found in one document.
type fieldErrors []error

// Error joins the problems on one line.
func (fe fieldErrors) Error() string {
	msgs := make([]string, len(fe))
	for i, err := range fe {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (fe fieldErrors) Unwrap() []error { return fe }

// typeMetaKeys are the top-level keys that select the kind; the walker skips
// them because the decoder has read them already.
var typeMetaKeys = map[string]bool{"apiVersion": true, "kind": true}

// Decode reads every object in data: a YAML stream of documents separated by
// `---` lines, or a stream of JSON documents. Empty and comment-only
// documents are skipped; a `kind: List` document yields its items. Decoding
// is strict: an unknown field, a value of the wrong type or a number out of
// range is an error naming the field's path. Errors name source and the
// document's number (counting documents that are not empty, from 1); when
// any document fails, Decode returns no objects.
func Decode(data []byte, source string) ([]*corralpb.Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("error decoding %s: %w", source, err)
	}
	var objs []*corralpb.Object
	var errs []error
	for _, d := range docs {
		if d.err == nil && d.tree == nil {
			continue // an empty document, such as `~` or `null`
		}
		var got []*corralpb.Object
		err := d.err
		if err == nil {
			got, err = decodeDocument(d.tree)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("error decoding %s (document %d): %w", source, d.number, err))
			continue
		}
		objs = append(objs, got...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// document is one document of a stream: its JSON tree, or why it has none.
type document struct {
	number int
	tree   any
	err    error
}

// splitDocuments cuts a stream into documents. A stream whose first
// non-blank character is `{` is read as JSON documents; if that is not valid
// JSON it is read as YAML (a YAML flow mapping starts with `{` too), and if
// that fails as well the JSON syntax error is reported.
func splitDocuments(data []byte) ([]document, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		docs, jerr := jsonDocuments(trimmed)
		if jerr == nil {
			return docs, nil
		}
		docs = yamlDocuments(data)
		for _, d := range docs {
			if d.err != nil {
				return nil, jerr
			}
		}
		return docs, nil
	}
	return yamlDocuments(data), nil
}

// jsonDocuments reads a stream of JSON values.
func jsonDocuments(data []byte) ([]document, error) {
	p := newJSONParser(data)
	var docs []document
	for n := 1; ; n++ {
		v, docErr, err := p.next()
		if errors.Is(err, errEndOfStream) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("invalid JSON in document %d: %w", n, err)
		}
		docs = append(docs, document{number: n, tree: v, err: docErr})
	}
}

// yamlDocuments converts each YAML document of the stream to a JSON tree.
// Documents with nothing but blank lines and comments are dropped and not
// counted.
func yamlDocuments(data []byte) []document {
	var docs []document
	for _, chunk := range splitYAML(string(data)) {
		if !hasYAMLContent(chunk) {
			continue
		}
		d := document{number: len(docs) + 1}
		j, err := yaml.YAMLToJSONStrict([]byte(chunk))
		if err != nil {
			d.err = err
		} else {
			d.tree, d.err = parseJSONDocument(j)
		}
		docs = append(docs, d)
	}
	return docs
}

// parseJSONDocument parses exactly one JSON value.
func parseJSONDocument(j []byte) (any, error) {
	v, docErr, err := newJSONParser(j).next()
	switch {
	case errors.Is(err, errEndOfStream):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return v, docErr
}

// splitYAML cuts a YAML stream at document markers: a line that is `---`,
// or starts with `--- ` (the rest of the line then opens the next document
// unless it is a comment), and the document end marker `...`.
func splitYAML(s string) []string {
	var chunks []string
	var cur strings.Builder
	flush := func() {
		chunks = append(chunks, cur.String())
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		trimmed := strings.TrimRight(line, " \t\r\n")
		switch {
		case trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t"):
			flush()
			if rest := strings.TrimSpace(trimmed[3:]); rest != "" && !strings.HasPrefix(rest, "#") {
				cur.WriteString(rest + "\n")
			}
		case trimmed == "...":
			flush()
		default:
			cur.WriteString(line)
		}
	}
	flush()
	return chunks
}

// hasYAMLContent reports whether a chunk holds more than blanks and comments.
func hasYAMLContent(chunk string) bool {
	for _, line := range strings.Split(chunk, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// decodeDocument decodes one document: an object or a List of objects.
func decodeDocument(tree any) ([]*corralpb.Object, error) {
	obj, ok := tree.(*jsonObject)
	if !ok {
		return nil, fmt.Errorf("expected an object, got %s", jsonTypeName(tree))
	}
	apiVersion, kind, err := readTypeMeta(obj, nil)
	if err != nil {
		return nil, err
	}
	if isListKind(kind) {
		return decodeList(obj)
	}
	o, err := decodeObject(obj, apiVersion, kind, nil)
	if err != nil {
		return nil, err
	}
	return []*corralpb.Object{o}, nil
}

// isListKind reports whether kind is "List" or a typed list ("PodList").
func isListKind(kind string) bool {
	if kind == "List" {
		return true
	}
	base, ok := strings.CutSuffix(kind, "List")
	if !ok {
		return false
	}
	_, known := entryByKind(base)
	return known
}

// decodeList decodes the items of a List document.
func decodeList(obj *jsonObject) ([]*corralpb.Object, error) {
	var errs fieldErrors
	var objs []*corralpb.Object
	for _, mem := range obj.members {
		switch mem.key {
		case "apiVersion", "kind":
		case "metadata":
			if _, ok := mem.value.(*jsonObject); !ok && mem.value != nil {
				errs = append(errs, fmt.Errorf("metadata: expected object, got %s", jsonTypeName(mem.value)))
			}
		case "items":
			items, ok := mem.value.([]any)
			if !ok && mem.value != nil {
				errs = append(errs, fmt.Errorf("items: expected array, got %s", jsonTypeName(mem.value)))
			}
			for i, item := range items {
				o, err := decodeListItem(item, field.NewPath("items").Index(i))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				objs = append(objs, o)
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown field %q", mem.key, mem.key))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return objs, nil
}

func decodeListItem(item any, path *field.Path) (*corralpb.Object, error) {
	obj, ok := item.(*jsonObject)
	if !ok {
		return nil, fmt.Errorf("%s: expected object, got %s", path, jsonTypeName(item))
	}
	apiVersion, kind, err := readTypeMeta(obj, path)
	if err != nil {
		return nil, err
	}
	if isListKind(kind) {
		return nil, fmt.Errorf("%s: a List may not contain a List", path)
	}
	return decodeObject(obj, apiVersion, kind, path)
}

// readTypeMeta reads apiVersion and kind.
func readTypeMeta(obj *jsonObject, path *field.Path) (apiVersion, kind string, err error) {
	var errs fieldErrors
	read := func(key string) string {
		v, ok := obj.get(key)
		if !ok || v == nil || v == "" {
			errs = append(errs, fmt.Errorf("%s not set", pathString(childPath(path, key))))
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: expected string, got %s", pathString(childPath(path, key)), describeJSON(v)))
		}
		return s
	}
	apiVersion, kind = read("apiVersion"), read("kind")
	if len(errs) > 0 {
		return "", "", errs
	}
	return apiVersion, kind, nil
}

// decodeObject decodes one object of a known kind.
func decodeObject(obj *jsonObject, apiVersion, kind string, path *field.Path) (*corralpb.Object, error) {
	e, ok := entryByKind(kind)
	if !ok || e.kind.APIVersion() != apiVersion {
		err := &NoKindMatchError{Kind: kind, APIVersion: apiVersion}
		if path != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	msg := e.inner()
	w := &walker{}
	w.object(msg.ProtoReflect(), obj, path, typeMetaKeys)
	if len(w.errs) > 0 {
		return nil, fieldErrors(w.errs)
	}
	return e.wrap(msg), nil
}

// manifestExts are the file name extensions DecodeFiles reads in directories.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// DecodeFiles decodes the objects in the named files and directories, in
// order. A directory contributes its .yaml, .yml and .json files sorted by
// name (its subdirectories too when recursive); a file named explicitly is
// read whatever its extension; "-" reads standard input. When any file fails
// DecodeFiles returns no objects and every file's error.
func DecodeFiles(paths []string, recursive bool) ([]*corralpb.Object, error) {
	var objs []*corralpb.Object
	var errs []error
	for _, p := range paths {
		files, err := expandPath(p, recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			got, err := decodeFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, got...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// expandPath lists the files a path stands for.
func expandPath(p string, recursive bool) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if manifestExts[strings.ToLower(filepath.Ext(path))] {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifests in %s: %w", p, err)
	}
	return files, nil
}

// decodeFile reads and decodes one file, or standard input for "-".
func decodeFile(name string) ([]*corralpb.Object, error) {
	var data []byte
	var err error
	source := name
	if name == "-" {
		source = "STDIN"
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	return Decode(data, source)
}
