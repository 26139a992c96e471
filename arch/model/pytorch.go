package model

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// stateDictWrappers are the keys under which training scripts commonly
// nest the state dict in a torch.save'd checkpoint (RobArch saves
// {"epoch", "state_dict", "best_prec1", "optimizer"}).
var stateDictWrappers = []string{"state_dict", "model", "model_state_dict", "net", "module"}

// ReadPyTorch reads a state dict from a file written by torch.save, without
// Python: a plain state dict, or one nested under "state_dict", "model",
// "model_state_dict", "net" or "module". Both of torch.save's formats are
// read (the zip archive of PyTorch >= 1.6 and the legacy stream), through
// a restricted unpickler that refuses any global a state dict does not
// need (*GlobalNotAllowedError), as torch.load(weights_only=True) does.
// Every length the file declares is checked against the file before it is
// allocated. Tensors come back on the CPU, with their names as stored
// (LoadStateDict strips "module." prefixes). The caller owns the tensors.
func ReadPyTorch(path string) (map[string]*ts.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read torch.save file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read torch.save file: %w", err)
	}
	out, err := readPyTorch(f, info.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// readPyTorch is ReadPyTorch on size bytes of r (FuzzReadPyTorch calls it
// on memory, sparing each input a file's system calls).
func readPyTorch(r io.ReaderAt, size int64) (map[string]*ts.Tensor, error) {
	var obj any
	var load func(*pyStorage) error
	var err error
	if zr, zerr := zip.NewReader(r, size); zerr == nil {
		obj, load, err = readZipPickle(zr, size)
	} else {
		obj, load, err = readLegacyPickle(r, size)
	}
	if err != nil {
		return nil, err
	}
	entries, err := dictEntries(obj)
	if err != nil {
		return nil, err
	}
	if !allTensors(entries) {
		var inner map[string]any
		for _, key := range stateDictWrappers {
			if v, ok := entries[key]; ok {
				if d, err := dictEntries(v); err == nil && allTensors(d) {
					inner = d
					break
				}
			}
		}
		if inner == nil {
			return nil, fmt.Errorf("no state dict found: the file holds a dict with keys %v and none of %v is a dict of tensors",
				sortedKeys(entries), stateDictWrappers)
		}
		entries = inner
	}
	// Tensors that view one storage share its copy in libtorch while they
	// are built.
	bases := map[*pyStorage]*ts.Tensor{}
	defer func() {
		for _, b := range bases {
			drop(b)
		}
	}()
	out := make(map[string]*ts.Tensor, len(entries))
	for _, name := range sortedKeys(entries) {
		t, err := storageTensor(entries[name].(*pyTensor), load, bases)
		if err != nil {
			for _, o := range out {
				drop(o)
			}
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// maxPickle bounds the pickle of a zip-format file, read into memory
// whole. A state dict's pickle holds names and tensor metadata, ~200 bytes
// a tensor; its data lives in other records.
const maxPickle = 256 << 20

// readZipPickle unpickles the data.pkl of a torch.save zip archive; load
// then reads a storage's record.
func readZipPickle(zr *zip.Reader, fileSize int64) (any, func(*pyStorage) error, error) {
	var pkl *zip.File
	records := map[string]*zip.File{}
	for _, f := range zr.File {
		records[f.Name] = f
		dir, base := path.Split(f.Name)
		if base == "constants.pkl" {
			return nil, nil, fmt.Errorf("a TorchScript archive (torch.jit.save), not a torch.save file")
		}
		if base == "data.pkl" && strings.Count(dir, "/") == 1 {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, nil, fmt.Errorf("not a torch.save file: a zip archive without ARCHIVE/data.pkl")
	}
	prefix, _ := path.Split(pkl.Name)
	data, err := readRecord(pkl, -1)
	if err != nil {
		return nil, nil, err
	}
	storages := map[string]*pyStorage{}
	u := newUnpickler(data, func(pid any) (any, error) { return persistentStorage(pid, storages, 5) })
	obj, err := u.load()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	load := func(st *pyStorage) error {
		if st.data != nil {
			return nil
		}
		need, err := storageBytes(st)
		if err != nil {
			return err
		}
		rec, ok := records[prefix+"data/"+st.key]
		if !ok {
			return fmt.Errorf("storage %q: no record %sdata/%s in the archive", st.key, prefix, st.key)
		}
		if rec.UncompressedSize64 < uint64(need) {
			return fmt.Errorf("storage %q: %d elements need %d bytes, its record holds %d", st.key, st.numel, need, rec.UncompressedSize64)
		}
		// Deflate expands at most ~1032 times: a record declaring more
		// than that is corrupt, whatever its uncompressed size says.
		if held := int64(min(rec.CompressedSize64, uint64(fileSize))); (rec.Method == zip.Store && need > held) || need/1032 > held {
			return fmt.Errorf("storage %q: %d bytes from a record of %d bytes", st.key, need, held)
		}
		st.data, err = readRecord(rec, need)
		return err
	}
	return obj, load, nil
}

// readRecord reads n bytes of a zip record (all of it, at most maxPickle,
// when n < 0) into a buffer that grows with the data actually read, so a
// record that declares more than it holds costs no more than it holds.
func readRecord(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	if n < 0 {
		b, err := io.ReadAll(io.LimitReader(rc, maxPickle+1))
		if err == nil && len(b) > maxPickle {
			err = fmt.Errorf("over %d bytes", maxPickle)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n, 1<<20)))
	if _, err := io.CopyN(&buf, rc, n); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// legacyMagic opens a legacy torch.save stream (a pickled integer).
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// readLegacyPickle reads torch.save's legacy stream
// (_use_new_zipfile_serialization=False): pickles of the magic number,
// the protocol version (1001) and system information, the object, the
// list of storage keys, then each storage as its element count and raw
// bytes.
func readLegacyPickle(r io.ReaderAt, size int64) (any, func(*pyStorage) error, error) {
	if size == 0 {
		return nil, nil, fmt.Errorf("not a torch.save file: empty")
	}
	data := make([]byte, size) // the file's real size, read whole
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, size), data); err != nil {
		return nil, nil, err
	}
	u := newUnpickler(data, nil)
	magic, err := u.load()
	if m, ok := magic.(*big.Int); err != nil || !ok || m.Cmp(legacyMagic) != 0 {
		return nil, nil, fmt.Errorf("not a torch.save file: neither a zip archive nor a stream that starts with PyTorch's magic number (%v)", err)
	}
	if v, err := u.load(); err != nil || v != int64(1001) {
		return nil, nil, fmt.Errorf("legacy torch.save stream: protocol version %v, want 1001 (%v)", v, err)
	}
	sys, err := u.load()
	if err != nil {
		return nil, nil, fmt.Errorf("legacy torch.save stream: system information: %w", err)
	}
	if d, ok := sys.(*pyDict); ok {
		if i, ok := d.index["little_endian"]; ok && d.vals[i] != true {
			return nil, nil, fmt.Errorf("legacy torch.save stream: written on a big-endian machine")
		}
	}
	storages := map[string]*pyStorage{}
	u.persID = func(pid any) (any, error) { return persistentStorage(pid, storages, 6) }
	obj, err := u.load()
	if err != nil {
		return nil, nil, err
	}
	u.persID = nil
	keys, err := u.load()
	if err != nil {
		return nil, nil, fmt.Errorf("legacy torch.save stream: storage keys: %w", err)
	}
	list, ok := keys.(*pyList)
	if !ok {
		return nil, nil, fmt.Errorf("legacy torch.save stream: storage keys are a %s, not a list", typeName(keys))
	}
	for _, k := range list.items {
		key, _ := k.(string)
		st, ok := storages[key]
		if !ok {
			return nil, nil, fmt.Errorf("legacy torch.save stream: storage %q is not referred to by the pickle", key)
		}
		n, err := u.uint(8)
		if err != nil {
			return nil, nil, fmt.Errorf("storage %q: %w", key, err)
		}
		if n != uint64(st.numel) {
			return nil, nil, fmt.Errorf("storage %q: %d elements stored, %d declared", key, n, st.numel)
		}
		need, err := storageBytes(st)
		if err != nil {
			return nil, nil, err
		}
		if st.data, err = u.take(uint64(need)); err != nil {
			return nil, nil, fmt.Errorf("storage %q: %w", key, err)
		}
	}
	load := func(st *pyStorage) error {
		if st.data == nil {
			return fmt.Errorf("storage %q: its data is not in the file", st.key)
		}
		return nil
	}
	return obj, load, nil
}

// persistentStorage resolves a persistent id ("storage", class, key,
// location, numel[, view metadata]) to its storage, one per key.
func persistentStorage(pid any, storages map[string]*pyStorage, arity int) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != arity || t[0] != "storage" {
		return nil, fmt.Errorf("persistent id: want a (\"storage\", ...) tuple of %d items, got a %s", arity, typeName(pid))
	}
	class, ok1 := t[1].(pyGlobal)
	key, ok2 := t[2].(string)
	_, ok3 := t[3].(string)
	numel, ok4 := t[4].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || numel < 0 || !strings.HasSuffix(class.name, "Storage") {
		return nil, fmt.Errorf("persistent id: a malformed storage reference")
	}
	if arity == 6 && t[5] != nil {
		return nil, fmt.Errorf("persistent id: storage views of the legacy format are not supported")
	}
	if st, ok := storages[key]; ok {
		return st, nil
	}
	st := &pyStorage{class: class.String(), key: key, numel: numel}
	storages[key] = st
	return st, nil
}

// storageType returns a storage's dtype and element size.
func storageType(st *pyStorage) (gotch.DType, int64, error) {
	name := st.class[strings.LastIndexByte(st.class, '.')+1:]
	t, ok := storageTypes[strings.TrimSuffix(name, "Storage")]
	if !ok {
		return 0, 0, fmt.Errorf("storage type %s is not supported", st.class)
	}
	return t.dtype, t.size, nil
}

// storageBytes is a storage's size in bytes, refusing an overflow.
func storageBytes(st *pyStorage) (int64, error) {
	_, es, err := storageType(st)
	if err != nil {
		return 0, err
	}
	if st.numel > math.MaxInt64/es {
		return 0, fmt.Errorf("storage %q: %d elements", st.key, st.numel)
	}
	return st.numel * es, nil
}

// dictEntries turns a pickled dict or OrderedDict with string keys into a
// Go map.
func dictEntries(obj any) (map[string]any, error) {
	d, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("expected a dict, found a %s", typeName(obj))
	}
	out := make(map[string]any, len(d.keys))
	for i, k := range d.keys {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("dict key of type %s is not a string", typeName(k))
		}
		out[s] = d.vals[i]
	}
	return out, nil
}

func allTensors(d map[string]any) bool {
	if len(d) == 0 {
		return false
	}
	for _, v := range d {
		if _, ok := v.(*pyTensor); !ok {
			return false
		}
	}
	return true
}

func sortedKeys(d map[string]any) []string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// storageTensor rebuilds a tensor from its storage, size, stride and
// offset, on the CPU whatever device it was saved from. bases caches each
// storage's libtorch copy; the caller drops them.
func storageTensor(pt *pyTensor, load func(*pyStorage) error, bases map[*pyStorage]*ts.Tensor) (*ts.Tensor, error) {
	st := pt.storage
	dtype, es, err := storageType(st)
	if err != nil {
		return nil, err
	}
	if len(pt.size) != len(pt.stride) {
		return nil, fmt.Errorf("size %v and stride %v differ in length", pt.size, pt.stride)
	}
	// A state dict's tensor is a view of its own storage or of a larger
	// shared one: every element it addresses must lie inside the storage,
	// which also keeps a corrupt size from making libtorch fill gigabytes.
	// Checked before the storage is read.
	n := st.numel
	numel := int64(1)
	for i, d := range pt.size {
		if d < 0 || pt.stride[i] < 0 {
			return nil, fmt.Errorf("size %v or stride %v is negative", pt.size, pt.stride)
		}
		if d > 0 && numel > n/d {
			return nil, fmt.Errorf("size %v has more elements than its storage's %d", pt.size, n)
		}
		numel *= d
	}
	if numel == 0 {
		return ts.Zeros(pt.size, dtype, gotch.CPU)
	}
	last := pt.offset // the last element addressed
	for i, d := range pt.size {
		if last < 0 || last >= n || (pt.stride[i] > 0 && d-1 > (n-1-last)/pt.stride[i]) {
			return nil, fmt.Errorf("size %v, stride %v and offset %d reach past its storage's %d elements", pt.size, pt.stride, pt.offset, n)
		}
		last += (d - 1) * pt.stride[i]
	}
	if last < 0 || last >= n {
		return nil, fmt.Errorf("size %v, stride %v and offset %d reach past its storage's %d elements", pt.size, pt.stride, pt.offset, n)
	}
	if err := load(st); err != nil {
		return nil, err
	}
	if len(pt.size) == 0 { // a 0-dim tensor: one element at the offset
		one, err := ts.OfDataSize(st.data[pt.offset*es:(pt.offset+1)*es], []int64{1}, dtype)
		if err != nil {
			return nil, err
		}
		return scalar(one)
	}
	base, ok := bases[st]
	if !ok {
		if base, err = ts.OfDataSize(st.data, []int64{n}, dtype); err != nil {
			return nil, err
		}
		bases[st] = base
	}
	strided, err := base.AsStrided(pt.size, pt.stride, []int64{pt.offset}, false)
	if err != nil {
		return nil, err
	}
	c, err := strided.Contiguous(true)
	if err != nil {
		return nil, err
	}
	return c, nil
}
