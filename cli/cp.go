package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	corralpb "github.com/corral-dev/corral/proto"
)

// cpOptions are the flags of `corral cp`.
type cpOptions struct {
	g         *globals
	container string
}

// newCpCommand returns `corral cp`.
func newCpCommand(g *globals) *cobra.Command {
	o := &cpOptions{g: g}
	cmd := &cobra.Command{
		Use:   "cp <file-spec-src> <file-spec-dest>",
		Short: "Copy files and directories to and from containers",
		Long: `Copy files and directories to and from containers.

One side is [NAMESPACE/]POD:PATH, the other a local path. As kubectl cp, it runs tar in the
container (tar must be in the container's image), and the destination names the copy: a file or
a directory is written under that name. Symbolic links are not copied.`,
		Example: `  # Copy /etc/fluent/fluent.conf out of a fluentd pod
  corral cp kube-system/fluentd-elasticsearch-x7k2p:/etc/fluent/fluent.conf ./fluent.conf

  # Copy a local directory into a pod's /tmp/conf
  corral cp ./conf web:/tmp/conf -c app`,
	}
	cmd.RunE = g.runE(func(ctx context.Context, args []string) error { return o.run(ctx, args) })
	cmd.Flags().StringVarP(&o.container, "container", "c", "", "Container name. If omitted, the pod's only container is chosen")
	return cmd
}

// podPath is the pod side of a copy.
type podPath struct {
	namespace, pod, path string
}

// split is the directory tar runs in (-C) and the name it copies there.
func (p podPath) split() (dir, base string) {
	dir, base = path.Split(path.Clean(p.path))
	if dir == "" {
		dir = "."
	}
	return dir, base
}

// parsePodPath reads [NAMESPACE/]POD:PATH; ok is false for a local path.
func parsePodPath(s, defaultNS string) (podPath, bool) {
	i := strings.Index(s, ":")
	if i <= 0 {
		return podPath{}, false
	}
	ref, p := s[:i], s[i+1:]
	ns, pod, found := strings.Cut(ref, "/")
	if !found {
		ns, pod = defaultNS, ref
	}
	return podPath{namespace: ns, pod: pod, path: p}, pod != ""
}

// run executes `corral cp`.
func (o *cpOptions) run(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("source and destination are required")
	}
	src, srcPod := parsePodPath(args[0], o.g.ns())
	dst, dstPod := parsePodPath(args[1], o.g.ns())
	switch {
	case srcPod && dstPod:
		return errors.New("one of src or dest must be a local file specification")
	case !srcPod && !dstPod:
		return errors.New("one of src or dest must be a remote file specification")
	case srcPod && src.path == "", dstPod && dst.path == "":
		return errors.New("remote path cannot be empty")
	}
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	if srcPod {
		return o.fromPod(ctx, c, src, args[1])
	}
	return o.toPod(ctx, c, args[0], dst)
}

// tar runs tar in the pod with the given arguments and streams.
func (o *cpOptions) tar(ctx context.Context, c corralpb.ClusterClient, p podPath, in io.Reader, out io.Writer, args ...string) error {
	var errOut bytes.Buffer
	start := &corralpb.ExecStart{Namespace: p.namespace, Pod: p.pod, Container: o.container,
		Command: append([]string{"tar"}, args...), Stdin: in != nil}
	code, err := execStream(ctx, c, start, in, out, &errOut)
	if err != nil {
		return err
	}
	if code != 0 {
		msg := strings.TrimSpace(errOut.String())
		if code == 126 || code == 127 || strings.Contains(msg, "executable file not found") {
			msg += " (cp runs tar in the container: its image must have tar)"
		}
		return fmt.Errorf("tar in pod %s exited with code %d: %s", p.pod, code, msg)
	}
	return nil
}

// fromPod copies the pod's path to the local path dst.
func (o *cpOptions) fromPod(ctx context.Context, c corralpb.ClusterClient, src podPath, dst string) error {
	dir, base := src.split()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := o.tar(ctx, c, src, nil, pw, "cf", "-", "-C", dir, base)
		pw.CloseWithError(err) // nil closes with io.EOF
		done <- err
	}()
	err := untar(pr, base, dst, o.g.warnf)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // tar pads its archive past the end marker
	}
	pr.CloseWithError(err) // unblocks the writer if untar stopped early
	if terr := <-done; terr != nil {
		return terr
	}
	return err
}

// untar writes the archive's entries under name (the copied file or
// directory) to dst, and refuses entries that would land outside it.
func untar(r io.Reader, name, dst string, warnf func(string, ...any)) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		rel := path.Clean(h.Name)
		var target string
		switch {
		case rel == name:
			target = dst
		case strings.HasPrefix(rel, name+"/"):
			target = filepath.Join(dst, filepath.FromSlash(strings.TrimPrefix(rel, name+"/")))
		default:
			return fmt.Errorf("the archive holds %q, outside the copied %q", h.Name, name)
		}
		if !withinDir(dst, target) {
			return fmt.Errorf("the archive holds %q, outside the copied %q", h.Name, name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", target, err)
			}
		case tar.TypeSymlink, tar.TypeLink:
			warnf("warning: skipping symlink: %q -> %q\n", target, h.Linkname)
		default:
			warnf("warning: skipping %q: not a file or a directory\n", h.Name)
		}
	}
}

// withinDir reports whether target is dst or below it.
func withinDir(dst, target string) bool {
	rel, err := filepath.Rel(filepath.Clean(dst), filepath.Clean(target))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// toPod copies the local path src to the pod's path.
func (o *cpOptions) toPod(ctx context.Context, c corralpb.ClusterClient, src string, dst podPath) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	dir, base := dst.split()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src, base, st, o.g.warnf)) }()
	err = o.tar(ctx, c, dst, pr, io.Discard, "xmf", "-", "-C", dir)
	pr.CloseWithError(err) // unblocks writeTar if tar stopped early
	return err
}

// writeTar writes src (a file, or a directory and all under it) to w as
// an archive whose top entry is named name.
func writeTar(w io.Writer, src, name string, st fs.FileInfo, warnf func(string, ...any)) error {
	tw := tar.NewWriter(w)
	add := func(p, entry string, fi fs.FileInfo) error {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			warnf("warning: skipping symlink: %q\n", p)
			return nil
		case !fi.IsDir() && !fi.Mode().IsRegular():
			warnf("warning: skipping %q: not a file or a directory\n", p)
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname = entry, "", ""
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}
	if !st.IsDir() {
		if err := add(src, name, st); err != nil {
			return err
		}
		return tw.Close()
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return add(p, path.Join(name, filepath.ToSlash(rel)), fi)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
