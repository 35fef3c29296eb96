package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// checkPrivate refuses a credential file that others than its owner may
// read or write, as ssh refuses a private key: the join token lets a
// machine act as a node, admin.conf gives the whole cluster away. A file
// that does not exist yet is fine (the server writes it 0600).
func checkPrivate(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s holds credentials but is open to others (mode %#o): run chmod 600 %s", path, perm, path)
	}
	return nil
}
