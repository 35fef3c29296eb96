package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// editHeader opens the file the editor sees, as kubectl's does.
const editHeader = `# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# kept and its path printed.
#
`

// editOptions are the flags of `corral edit`.
type editOptions struct {
	g *globals
}

// newEditCommand returns `corral edit`.
func newEditCommand(g *globals) *cobra.Command {
	o := &editOptions{g: g}
	return &cobra.Command{
		Use:   "edit (TYPE NAME | TYPE/NAME)",
		Short: "Edit a resource on the server",
		Long: `Edit a resource from the default editor: $KUBE_EDITOR, else $EDITOR, else vi.
The edited object is validated and written back only if nobody changed it meanwhile;
if it is invalid or conflicts, the edited copy is kept and its path printed.`,
		Example: `  corral edit ds nginx-daemonset
  KUBE_EDITOR=nano corral edit node/node1`,
		RunE: g.runE(o.run),
	}
}

// run executes `corral edit` for every named object in turn.
func (o *editOptions) run(ctx context.Context, args []string) error {
	sels, err := parseResourceArgs(args)
	if err != nil {
		return err
	}
	if len(sels) == 0 {
		return kubectlError("You must specify the type of resource to edit, and its name.")
	}
	for _, s := range sels {
		if len(s.names) == 0 {
			return fmt.Errorf("edit needs the name of the %s to edit", kindString(s.kind))
		}
		for _, name := range s.names {
			if err := o.editOne(ctx, s.kind, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// editOne edits one object.
func (o *editOptions) editOne(ctx context.Context, k api.Kind, name string) error {
	orig, err := o.g.getObject(ctx, k.Kind, namespaceFor(k, o.g.ns()), name)
	if err != nil {
		return err
	}
	data, err := api.MarshalYAML(orig)
	if err != nil {
		return fmt.Errorf("encode %s: %w", objectRef(k, name), err)
	}
	path, err := writeEditFile(append([]byte(editHeader), data...))
	if err != nil {
		return err
	}
	if err := o.runEditor(ctx, path); err != nil {
		return fmt.Errorf("%w; your copy is at %q", err, path)
	}
	edited, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read edited file: %w", err)
	}
	body := stripComments(edited)
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		o.g.warnf("Edit cancelled, saved file was empty.\n")
		return removeFile(path)
	case bytes.Equal(body, stripComments(data)):
		o.g.warnf("Edit cancelled, no changes made.\n")
		return removeFile(path)
	}
	if err := o.save(ctx, k, orig, body, path); err != nil {
		o.g.printErr(err)
		o.g.warnf("A copy of your changes has been stored to %q\n", path)
		return kubectlError("Edit cancelled, no valid changes were saved.")
	}
	o.g.printf("%s edited\n", objectRef(k, name))
	return removeFile(path)
}

// save decodes, checks and writes the edited object, conditional on the
// resourceVersion that was edited.
func (o *editOptions) save(ctx context.Context, k api.Kind, orig *corralpb.Object, body []byte, path string) error {
	objs, err := api.Decode(body, path)
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("the edited file must hold exactly one object, found %d", len(objs))
	}
	obj := objs[0]
	om, nm := api.Meta(orig), api.Meta(obj)
	if api.KindOf(obj) != k.Kind || nm.GetName() != om.GetName() {
		return kubectlError("At least one of apiVersion, kind and name was changed")
	}
	if k.Namespaced && nm.GetNamespace() == "" {
		nm.Namespace = om.GetNamespace()
	}
	nm.ResourceVersion = om.GetResourceVersion()
	api.SetDefaults(obj)
	if err := api.ValidateUpdate(obj, orig); err != nil {
		return err
	}
	_, err = o.g.updateObject(ctx, obj, false)
	return err
}

// runEditor runs the user's editor on path, attached to the CLI's streams.
func (o *editOptions) runEditor(ctx context.Context, path string) error {
	editor := firstNonEmpty(o.g.getenv("KUBE_EDITOR"), o.g.getenv("EDITOR"), "vi")
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+" "+shellQuote(path))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.g.in, o.g.out, o.g.errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("there was a problem with the editor %q: %w", editor, err)
	}
	return nil
}

// writeEditFile writes data to a new temporary file and returns its path.
func writeEditFile(data []byte) (string, error) {
	f, err := os.CreateTemp("", "corral-edit-*.yaml")
	if err != nil {
		return "", fmt.Errorf("create edit file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close() // the write error is the one to report
		return "", fmt.Errorf("write edit file %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close edit file %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// removeFile deletes the temporary edit file.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove edit file: %w", err)
	}
	return nil
}

// stripComments drops the lines that start with '#'.
func stripComments(data []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
