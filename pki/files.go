package pki

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir is a directory of TLS files (mode 0700): ca.crt, ca.key on servers,
// and NAME.crt with NAME.key for each certificate the process holds. Keys
// are written 0600, and a key readable by others is refused when loaded.
type Dir string

// Files of a Dir.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
)

// Path is the path of a file in d.
func (d Dir) Path(file string) string { return filepath.Join(string(d), file) }

// LoadCA reads the CA certificate and, when present, its key. It returns
// fs.ErrNotExist (wrapped) when there is no CA certificate.
func (d Dir) LoadCA() (*CA, error) {
	certPEM, err := os.ReadFile(d.Path(caCertFile))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := readPrivate(d.Path(caKeyFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return ca, nil
}

// SaveCA writes the CA certificate and, when it is held, its key.
func (d Dir) SaveCA(ca *CA) error {
	if err := d.mkdir(); err != nil {
		return err
	}
	if err := WritePrivate(d.Path(caCertFile), ca.CertPEM); err != nil {
		return err
	}
	if len(ca.KeyPEM) > 0 {
		return WritePrivate(d.Path(caKeyFile), ca.KeyPEM)
	}
	return nil
}

// LoadPair reads NAME.crt and NAME.key; it returns fs.ErrNotExist (wrapped)
// when either is missing.
func (d Dir) LoadPair(name string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(d.Path(name + ".crt")); err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	if keyPEM, err = readPrivate(d.Path(name + ".key")); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// SavePair writes NAME.crt and NAME.key, the key first.
func (d Dir) SavePair(name string, certPEM, keyPEM []byte) error {
	if err := d.mkdir(); err != nil {
		return err
	}
	if err := WritePrivate(d.Path(name+".key"), keyPEM); err != nil {
		return err
	}
	return WritePrivate(d.Path(name+".crt"), certPEM)
}

func (d Dir) mkdir() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", d, err)
	}
	return nil
}

// CheckPrivate refuses a key or credential file that others than its owner
// may read or write, as ssh refuses a private key. A missing file passes.
func CheckPrivate(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s holds a key or credentials but is open to others (mode %#o): run chmod 600 %s", path, perm, path)
	}
	return nil
}

func readPrivate(path string) ([]byte, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return b, nil
}

// WritePrivate writes data to path with mode 0600, atomically (a temporary
// file beside it, synced, then renamed).
func WritePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()      // already failing
		_ = os.Remove(tmp) // the temp file is garbage either way
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", tmp, err))
	}
	if _, err := f.Write(data); err != nil {
		return fail(fmt.Errorf("write %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("close %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("rename %s to %s: %w", tmp, path, err))
	}
	return nil
}

// LoadKeyPair reads NAME's pair and builds the TLS certificate, with ca
// appended to the chain when given.
func (d Dir) LoadKeyPair(name string, ca *CA) (*tls.Certificate, error) {
	certPEM, keyPEM, err := d.LoadPair(name)
	if err != nil {
		return nil, err
	}
	var caCert = ca
	if caCert == nil {
		return KeyPair(certPEM, keyPEM, nil)
	}
	return KeyPair(certPEM, keyPEM, caCert.Cert)
}
