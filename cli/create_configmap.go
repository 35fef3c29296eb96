package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// configMapOptions are the flags of `corral create configmap`.
type configMapOptions struct {
	createOptions
	fromFile    []string
	fromLiteral []string
	fromEnvFile []string
}

// newCreateConfigMapCommand returns `corral create configmap`.
func newCreateConfigMapCommand(g *globals) *cobra.Command {
	o := &configMapOptions{createOptions: createOptions{g: g}}
	cmd := &cobra.Command{
		Use:     "configmap NAME [--from-file=[key=]source] [--from-literal=key1=value1] [--from-env-file=source] [--dry-run=server|client|none]",
		Aliases: []string{"cm"},
		Short:   "Create a config map from a local file, directory or literal value",
		Example: `  corral create configmap my-config --from-file=path/to/bar
  corral create configmap my-config --from-file=key1=/path/to/bar/file1.txt
  corral create configmap my-config --from-literal=key1=config1 --from-literal=key2=config2
  corral create configmap my-config --from-env-file=path/to/foo.env`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		if len(args) != 1 {
			return errors.New("exactly one NAME is required, got " + fmt.Sprint(len(args)))
		}
		obj, err := o.build(args[0])
		if err != nil {
			return err
		}
		return o.create(ctx, obj, mode)
	})
	fs := cmd.Flags()
	fs.StringSliceVar(&o.fromFile, "from-file", nil, "Key file can be specified using its file path, in which case file basename will be used as configmap key, or optionally with a key and file path, in which case the given key will be used. Specifying a directory will iterate each named file in the directory whose basename is a valid configmap key.")
	fs.StringArrayVar(&o.fromLiteral, "from-literal", nil, "Specify a key and literal value to insert in configmap (i.e. mykey=somevalue)")
	fs.StringSliceVar(&o.fromEnvFile, "from-env-file", nil, "Specify the path to a file to read lines of key=val pairs to create a configmap.")
	addDryRunFlag(cmd)
	o.out.addFlags(fs, false)
	return cmd
}

// build assembles and validates the config map.
func (o *configMapOptions) build(name string) (*corralpb.Object, error) {
	if len(o.fromEnvFile) > 0 && (len(o.fromFile) > 0 || len(o.fromLiteral) > 0) {
		return nil, errors.New("from-env-file cannot be combined with from-file or from-literal")
	}
	cm := &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: name, Namespace: o.g.ns()}}
	for _, src := range o.fromFile {
		if err := addFromFileSource(cm, src); err != nil {
			return nil, err
		}
	}
	for _, lit := range o.fromLiteral {
		key, value, ok := strings.Cut(lit, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("invalid literal source %v, expected key=value", lit)
		}
		if err := addConfigMapKey(cm, key, []byte(value)); err != nil {
			return nil, err
		}
	}
	for _, path := range o.fromEnvFile {
		if err := addFromEnvFile(cm, path, os.LookupEnv); err != nil {
			return nil, err
		}
	}
	obj := api.Wrap(cm)
	api.SetDefaults(obj)
	if err := api.Validate(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// addFromFileSource adds "[key=]path": one file, or every regular file of
// a directory under its base name.
func addFromFileSource(cm *corralpb.ConfigMap, src string) error {
	key, path, hasKey := strings.Cut(src, "=")
	if !hasKey {
		path, key = src, filepath.Base(src)
	}
	if hasKey && (key == "" || path == "") {
		return fmt.Errorf("key names or file paths cannot be empty: %q", src)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("error reading %s: %w", path, err)
	}
	if !info.IsDir() {
		return addKeyFromFile(cm, key, path)
	}
	if hasKey {
		return errors.New("cannot give a key name for a directory path")
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("error listing files in %s: %w", path, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := addKeyFromFile(cm, e.Name(), filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// addKeyFromFile adds a file's content under key.
func addKeyFromFile(cm *corralpb.ConfigMap, key, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("error reading %s: %w", path, err)
	}
	return addConfigMapKey(cm, key, data)
}

// addConfigMapKey adds one key: UTF-8 text to data, anything else to
// binaryData, with kubectl's key checks.
func addConfigMapKey(cm *corralpb.ConfigMap, key string, value []byte) error {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return fmt.Errorf("%q is not a valid key name for a ConfigMap: %s", key, strings.Join(errs, ","))
	}
	_, inData := cm.GetData()[key]
	_, inBinary := cm.GetBinaryData()[key]
	if inData || inBinary {
		return fmt.Errorf("cannot add key %q, another key by that name already exists in Data for ConfigMap %q", key, cm.GetMetadata().GetName())
	}
	if utf8.Valid(value) {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[key] = string(value)
		return nil
	}
	if cm.BinaryData == nil {
		cm.BinaryData = map[string][]byte{}
	}
	cm.BinaryData[key] = value
	return nil
}

// addFromEnvFile adds the KEY=VALUE lines of an env file; a bare KEY takes
// its value from the environment when set there. Blank lines and lines
// starting with # are skipped.
func addFromEnvFile(cm *corralpb.ConfigMap, path string, lookup func(string) (string, bool)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("error reading %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		line = strings.TrimLeft(line, " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, hasValue := strings.Cut(line, "=")
		if errs := validation.IsEnvVarName(key); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid key name: %s", key, strings.Join(errs, ";"))
		}
		if !hasValue {
			v, ok := lookup(key)
			if !ok {
				continue
			}
			value = v
		}
		if err := addConfigMapKey(cm, key, []byte(value)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("error reading %s: %w", path, err)
	}
	return nil
}
