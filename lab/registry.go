package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// registryReadyFile is written once the registry serves every image.
func registryReadyFile(dir string) string { return filepath.Join(dir, "registry", "ready") }

func pushedDir(dir string) string { return filepath.Join(dir, "pushed") }

// ServeRegistry runs the lab's image registry on addr until ctx ends:
// go-containerregistry's registry with blobs on disk under DIR/registry,
// seeded with the stand-in image (built from the corral binary bin) under
// every name of StandinImages and with the images `lab push` stored in
// DIR/pushed. It writes DIR/registry/ready when it serves them all.
func ServeRegistry(ctx context.Context, dir, addr, bin string, logger *slog.Logger) error {
	blobs := filepath.Join(dir, "registry", "blobs")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return fmt.Errorf("create registry dir: %w", err)
	}
	_ = os.Remove(registryReadyFile(dir))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	logger.Info("lab registry listening", "addr", addr)
	if err := seedRegistry(ctx, dir, addr, bin, logger); err != nil {
		_ = srv.Close()
		return err
	}
	if err := writeAtomic(registryReadyFile(dir), []byte("ok\n"), 0o600); err != nil {
		_ = srv.Close()
		return err
	}
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	case err := <-served:
		return fmt.Errorf("registry: %w", err)
	}
}

// seedRegistry pushes the stand-ins and the stored pushed images.
func seedRegistry(ctx context.Context, dir, addr, bin string, logger *slog.Logger) error {
	img, err := StandinImage(bin)
	if err != nil {
		return err
	}
	for _, ref := range StandinImages {
		one, err := StandinFor(img, ref)
		if err != nil {
			return err
		}
		if err := pushTo(ctx, addr, ref, one); err != nil {
			return err
		}
	}
	logger.Info("stand-in images served", "images", len(StandinImages))
	refs, _ := filepath.Glob(filepath.Join(pushedDir(dir), "*.ref"))
	for _, rf := range refs {
		data, err := os.ReadFile(rf)
		if err != nil {
			return fmt.Errorf("read pushed image: %w", err)
		}
		ref := strings.TrimSpace(string(data))
		img, err := tarball.ImageFromPath(strings.TrimSuffix(rf, ".ref")+".tar", nil)
		if err != nil {
			logger.Warn("pushed image unreadable", "ref", ref, "err", err)
			continue
		}
		if err := pushTo(ctx, addr, ref, img); err != nil {
			return err
		}
	}
	return nil
}

// pushTo writes img to the registry at addr where a "*" mirror finds ref.
func pushTo(ctx context.Context, addr, ref string, img v1.Image) error {
	p, err := MirrorPath(ref)
	if err != nil {
		return err
	}
	dst, err := name.ParseReference(addr+"/"+p, name.Insecure)
	if err != nil {
		return fmt.Errorf("registry reference for %s: %w", ref, err)
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s to the lab registry: %w", ref, err)
	}
	return nil
}

// storePushed keeps a pushed image's tarball in DIR/pushed, so that a
// restarted registry serves it again.
func storePushed(dir, tarPath, ref string) error {
	if err := os.MkdirAll(pushedDir(dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", pushedDir(dir), err)
	}
	sum := sha256.Sum256([]byte(ref))
	base := filepath.Join(pushedDir(dir), hex.EncodeToString(sum[:8]))
	if err := copyFile(tarPath, base+".tar"); err != nil {
		return err
	}
	return writeAtomic(base+".ref", []byte(ref+"\n"), 0o600)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// waitRegistry waits for the registry process to write its ready file.
func waitRegistry(ctx context.Context, dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(registryReadyFile(dir)); err == nil {
			return nil
		}
		if registryProc(dir).pid() == 0 {
			return fmt.Errorf("the lab registry exited; see %s", filepath.Join(dir, "registry.log"))
		}
		if time.Now().After(deadline) {
			return errors.New("the lab registry did not get ready in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
