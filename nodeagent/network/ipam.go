package network

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// ipam hands out the addresses of one pod CIDR, persistently, like CNI's
// host-local plugin: an address is reserved by creating a file named after
// it in dir with O_EXCL (its content is the owner, the pod UID), so that a
// crash at any point leaves either a reservation or none, never a half. The
// last address handed out is remembered in dir/last_reserved_ip and the
// next allocation starts after it (round robin), so that a just-released
// address is not immediately given to another pod.
//
// ipam does not lock: Bridge serialises its calls.
type ipam struct {
	dir    string
	prefix netip.Prefix // masked, IPv4
}

const lastReservedFile = "last_reserved_ip"

// openIPAM makes dir if missing. The prefix must be an IPv4 prefix with
// room for at least the network, gateway and broadcast addresses.
func openIPAM(dir string, prefix netip.Prefix) (*ipam, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("ipam: pod CIDR %s: want an IPv4 prefix of /30 or larger", prefix)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	return &ipam{dir: dir, prefix: prefix.Masked()}, nil
}

// gateway is the first host address of prefix: the bridge's address.
func gateway(prefix netip.Prefix) netip.Addr {
	return prefix.Masked().Addr().Next()
}

// broadcast is the last address of an IPv4 prefix.
func broadcast(prefix netip.Prefix) netip.Addr {
	a := prefix.Masked().Addr().As4()
	hostBits := 32 - prefix.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= uint32(uint64(1)<<hostBits - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// first and last are the range pods get: after the gateway, before the
// broadcast address.
func (m *ipam) first() netip.Addr { return gateway(m.prefix).Next() }
func (m *ipam) last() netip.Addr  { return broadcast(m.prefix).Prev() }

// Reserve returns the address reserved for owner, reserving the next free
// one after the last handed out if owner holds none.
func (m *ipam) Reserve(owner string) (netip.Addr, error) {
	held, err := m.Reserved()
	if err != nil {
		return netip.Addr{}, err
	}
	for a, o := range held {
		if o == owner && m.prefix.Contains(a) && a.Compare(m.first()) >= 0 && a.Compare(m.last()) <= 0 {
			return a, nil
		}
	}
	start := m.first()
	if last, err := m.lastReserved(); err == nil && m.prefix.Contains(last) && last.Compare(m.last()) < 0 && last.Compare(m.first()) >= 0 {
		start = last.Next()
	}
	a := start
	for {
		if _, taken := held[a]; !taken {
			ok, err := m.tryReserve(a, owner)
			if err != nil {
				return netip.Addr{}, err
			}
			if ok {
				return a, nil
			}
		}
		if a == m.last() {
			a = m.first()
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("ipam: %s: %w", m.prefix, ErrExhausted)
		}
	}
}

// tryReserve creates a's reservation; false if another one holds it.
func (m *ipam) tryReserve(a netip.Addr, owner string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(m.dir, a.String()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ipam: reserve %s: %w", a, err)
	}
	// No fsync: the directory entry is what reserves, and after a crash
	// of the machine Init reserves the addresses of the records again.
	_, err = f.WriteString(owner)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return false, fmt.Errorf("ipam: reserve %s: %w", a, err)
	}
	// Failing to remember it only moves the round robin's start: the
	// reservation stands.
	_ = writeFileAtomic(filepath.Join(m.dir, lastReservedFile), []byte(a.String()), false)
	return true, nil
}

func (m *ipam) lastReserved() (netip.Addr, error) {
	b, err := os.ReadFile(filepath.Join(m.dir, lastReservedFile))
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(string(b)))
}

// Release removes a's reservation; releasing a free address is no error.
func (m *ipam) Release(a netip.Addr) error {
	if err := os.Remove(filepath.Join(m.dir, a.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ipam: release %s: %w", a, err)
	}
	return nil
}

// Reserved returns every reservation in dir (also those outside the
// current prefix) with its owner.
func (m *ipam) Reserved() (map[netip.Addr]string, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: list reservations: %w", err)
	}
	held := make(map[netip.Addr]string, len(entries))
	for _, e := range entries {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || e.IsDir() {
			continue // last_reserved_ip, temporary files
		}
		b, err := os.ReadFile(filepath.Join(m.dir, e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("ipam: read reservation %s: %w", a, err)
		}
		held[a] = strings.TrimSpace(string(b))
	}
	return held, nil
}

// writeFileAtomic replaces path with data: a reader (or a crash) sees the
// old content or the new one, never a part; with sync also after a crash
// of the machine.
func writeFileAtomic(path string, data []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
