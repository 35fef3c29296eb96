package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Snapshot format, version 1:
//
//	magic    "CORRALSS" (8 bytes)
//	version  uvarint (1)
//	records  tag (1 byte), length (uvarint), payload (length bytes)
//
// Records, in this order:
//
//	recConfig  corralpb.ClusterConfig, at most once
//	recMember  corralpb.Member, by name
//	recIdentity corralpb.Identity, by name
//	recObject  corralpb.Object, kind by kind (Object oneof order), each by namespace, name
//	recIndex   uvarint index value, then the key's bytes; by key
//	recEnd     uvarint count of the records before it; always last
//
// Protobuf payloads are marshalled deterministically, so equal stores give
// equal bytes.
const (
	snapshotMagic   = "CORRALSS"
	snapshotVersion = 1

	recConfig byte = 1
	recMember byte = 2
	recObject byte = 3
	recIndex  byte = 4
	recEnd    byte = 5
	// recIdentity came after version 1 was first written; older snapshots
	// simply have none.
	recIdentity byte = 6

	maxRecordLen = 64 << 20
	ioBufferSize = 256 << 10
)

// Persist writes a consistent point-in-time snapshot of the store to w,
// streaming: all objects, members, the cluster config and every index. It
// reads one memdb transaction, so Apply may run concurrently.
func (s *Store) Persist(w io.Writer) error {
	txn := s.db.Txn(false)
	enc := &encoder{w: bufio.NewWriterSize(w, ioBufferSize), opts: proto.MarshalOptions{Deterministic: true}}
	enc.w.WriteString(snapshotMagic)
	enc.uvarint(snapshotVersion)
	if raw, err := txn.First(tableMeta, indexID, metaKeyConfig); err != nil {
		return fmt.Errorf("state: persist: %w", err)
	} else if raw != nil {
		enc.message(recConfig, raw.(*corralpb.ClusterConfig))
	}
	if err := enc.table(txn, tableMembers, recMember); err != nil {
		return err
	}
	if err := enc.table(txn, tableIdentities, recIdentity); err != nil {
		return err
	}
	for _, k := range kinds {
		if err := enc.table(txn, k.name, recObject); err != nil {
			return err
		}
	}
	it, err := txn.Get(tableIndex, indexID)
	if err != nil {
		return fmt.Errorf("state: persist: %w", err)
	}
	for raw := it.Next(); raw != nil && enc.err == nil; raw = it.Next() {
		e := raw.(*indexEntry)
		enc.buf = binary.AppendUvarint(enc.buf[:0], e.Value)
		enc.buf = append(enc.buf, e.Key...)
		enc.record(recIndex, enc.buf)
	}
	count := enc.count
	enc.buf = binary.AppendUvarint(enc.buf[:0], count)
	enc.record(recEnd, enc.buf)
	if enc.err == nil {
		enc.err = enc.w.Flush()
	}
	if enc.err != nil {
		return fmt.Errorf("state: persist: %w", enc.err)
	}
	return nil
}

// encoder writes records, keeping the first error.
type encoder struct {
	w     *bufio.Writer
	opts  proto.MarshalOptions
	buf   []byte
	hdr   [1 + binary.MaxVarintLen64]byte
	count uint64
	err   error
}

func (e *encoder) uvarint(v uint64) {
	n := binary.PutUvarint(e.hdr[:], v)
	e.w.Write(e.hdr[:n])
}

// table writes every row of a table of proto messages.
func (e *encoder) table(txn *memdb.Txn, table string, tag byte) error {
	it, err := txn.Get(table, indexID)
	if err != nil {
		return fmt.Errorf("state: persist %s: %w", table, err)
	}
	for raw := it.Next(); raw != nil && e.err == nil; raw = it.Next() {
		e.message(tag, raw.(proto.Message))
	}
	return nil
}

func (e *encoder) message(tag byte, m proto.Message) {
	if e.err != nil {
		return
	}
	var err error
	e.buf, err = e.opts.MarshalAppend(e.buf[:0], m)
	if err != nil {
		e.err = err
		return
	}
	e.record(tag, e.buf)
}

func (e *encoder) record(tag byte, payload []byte) {
	if e.err != nil {
		return
	}
	e.hdr[0] = tag
	n := 1 + binary.PutUvarint(e.hdr[1:], uint64(len(payload)))
	if _, err := e.w.Write(e.hdr[:n]); err != nil {
		e.err = err
		return
	}
	if _, err := e.w.Write(payload); err != nil {
		e.err = err
		return
	}
	e.count++
}

// Restore reads a snapshot written by Persist into a new store. It rejects
// anything else (wrong magic, unknown version, unknown or malformed
// records, a missing trailer, trailing bytes) with an error saying what was
// wrong. Subscribing to the new store before the snapshot's index gives
// ErrTooOld: the events before it are unknown.
func Restore(r io.Reader, opts ...Option) (*Store, error) {
	s := New(opts...)
	d := &decoder{r: bufio.NewReaderSize(r, ioBufferSize)}
	if err := d.header(); err != nil {
		return nil, fmt.Errorf("state: restore: %w", err)
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	for {
		tag, payload, err := d.next()
		if err != nil {
			return nil, fmt.Errorf("state: restore: record %d: %w", d.count, err)
		}
		if tag == recEnd {
			if err := d.end(payload); err != nil {
				return nil, fmt.Errorf("state: restore: %w", err)
			}
			break
		}
		if err := restoreRecord(txn, tag, payload); err != nil {
			return nil, fmt.Errorf("state: restore: record %d: %w", d.count, err)
		}
		d.count++
	}
	latest := indexValue(txn, indexKeyLatest)
	txn.Commit()
	s.hub.setFloor(latest)
	return s, nil
}

// decoder reads records.
type decoder struct {
	r     *bufio.Reader
	buf   []byte
	count uint64
}

func (d *decoder) header() error {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(d.r, magic); err != nil {
		return fmt.Errorf("not a corral state snapshot: reading header: %w", err)
	}
	if string(magic) != snapshotMagic {
		return fmt.Errorf("not a corral state snapshot: bad magic %q", magic)
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		return fmt.Errorf("reading format version: %w", err)
	}
	if v != snapshotVersion {
		return fmt.Errorf("unsupported snapshot format version %d (this server reads version %d)", v, snapshotVersion)
	}
	return nil
}

// next reads one record; the payload is valid until the next call.
func (d *decoder) next() (byte, []byte, error) {
	tag, err := d.r.ReadByte()
	if errors.Is(err, io.EOF) {
		return 0, nil, errors.New("snapshot truncated: no end record")
	}
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return 0, nil, fmt.Errorf("reading length: %w", noEOF(err))
	}
	if n > maxRecordLen {
		return 0, nil, fmt.Errorf("length %d exceeds the %d-byte limit", n, maxRecordLen)
	}
	if uint64(cap(d.buf)) < n {
		d.buf = make([]byte, n)
	}
	d.buf = d.buf[:n]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return 0, nil, fmt.Errorf("reading %d-byte payload: %w", n, noEOF(err))
	}
	return tag, d.buf, nil
}

// end checks the end record's count and that nothing follows it.
func (d *decoder) end(payload []byte) error {
	count, n := binary.Uvarint(payload)
	if n <= 0 || n != len(payload) {
		return errors.New("malformed end record")
	}
	if count != d.count {
		return fmt.Errorf("end record counts %d records, read %d", count, d.count)
	}
	if _, err := d.r.ReadByte(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return errors.New("unexpected data after the end record")
	}
	return nil
}

// noEOF reports a clean EOF inside a record as truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// restoreRecord inserts one record's row.
func restoreRecord(txn *memdb.Txn, tag byte, payload []byte) error {
	switch tag {
	case recConfig:
		cfg := &corralpb.ClusterConfig{}
		if err := proto.Unmarshal(payload, cfg); err != nil {
			return fmt.Errorf("cluster config: %w", err)
		}
		return txn.Insert(tableMeta, cfg)
	case recMember:
		m := &corralpb.Member{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("member: %w", err)
		}
		return txn.Insert(tableMembers, m)
	case recIdentity:
		m := &corralpb.Identity{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		return txn.Insert(tableIdentities, m)
	case recObject:
		return restoreObject(txn, payload)
	case recIndex:
		v, n := binary.Uvarint(payload)
		if n <= 0 || n == len(payload) {
			return errors.New("malformed index record")
		}
		return txn.Insert(tableIndex, &indexEntry{Key: string(payload[n:]), Value: v})
	}
	return fmt.Errorf("unknown record type %d", tag)
}

func restoreObject(txn *memdb.Txn, payload []byte) error {
	o := &corralpb.Object{}
	if err := proto.Unmarshal(payload, o); err != nil {
		return fmt.Errorf("object: %w", err)
	}
	k := kindOf(o)
	if k == nil {
		return errors.New("object has no kind")
	}
	m := metaOf(o)
	if err := checkName(k, m.GetNamespace(), m.GetName()); err != nil {
		return fmt.Errorf("object: %w", err)
	}
	if err := txn.Insert(k.name, o); err != nil {
		return err
	}
	return insertLinks(txn, k, o)
}
