package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sugarme/gotch"
)

// A restricted unpickler for the pickles inside torch.save files. It
// builds only plain values (numbers, strings, tuples, lists, dicts) and the
// few torch globals a state dict needs, and refuses any other global, as
// torch.load(weights_only=True) does: a pickle may name any Python
// callable, and a file from outside must not choose what runs. It reads
// from a byte slice whose length is known, so every declared length is
// checked against the bytes that remain before anything is allocated
// (gotch's unpickler allocated first: a 7-byte file declaring an 800 MB
// string allocated 800 MB, see docs/reliability.md).

// pyGlobal is a global a pickle named (GLOBAL or STACK_GLOBAL).
type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

type pyTuple []any

type pyList struct{ items []any }

// pyDict is a dict or an OrderedDict; keys keep their pickled order.
type pyDict struct {
	keys, vals []any
	index      map[any]int // hashable keys only
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) {
	switch k.(type) {
	case string, int64, float64, bool, nil, pyGlobal:
		if i, ok := d.index[k]; ok {
			d.vals[i] = v
			return
		}
		d.index[k] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// pyStorage is a storage a pickle refers to by persistent id; its bytes
// are read after the pickle, and only for tensors that are returned.
type pyStorage struct {
	class string // e.g. torch.FloatStorage
	key   string
	numel int64
	data  []byte
}

// pyTensor is what torch._utils._rebuild_tensor(_v2) describes.
type pyTensor struct {
	storage      *pyStorage
	offset       int64
	size, stride []int64
}

// storageTypes maps torch's storage classes to a dtype and element size.
var storageTypes = map[string]struct {
	dtype gotch.DType
	size  int64
}{
	"Float": {gotch.Float, 4}, "Double": {gotch.Double, 8}, "Half": {gotch.Half, 2}, "BFloat16": {gotch.BFloat16, 2},
	"Long": {gotch.Int64, 8}, "Int": {gotch.Int, 4}, "Short": {gotch.Int16, 2}, "Char": {gotch.Int8, 1},
	"Byte": {gotch.Uint8, 1}, "Bool": {gotch.Bool, 1},
}

// allowedGlobals are the globals torch.load(weights_only=True) accepts in
// PyTorch 1.13 (torch._weights_only_unpickler._get_allowed_globals, listed
// from Debian's torch 1.13.1), plus the ones 2.x added for state dicts
// (_rebuild_parameter_with_state, _rebuild_from_type_v2, torch.device,
// _codecs.encode, more dtypes). Only some can be rebuilt here (callGlobal);
// the others are refused as unsupported rather than as unsafe.
var allowedGlobals = func() map[string]bool {
	m := map[string]bool{}
	for _, g := range []string{
		"collections.OrderedDict", "torch.nn.parameter.Parameter", "torch.serialization._get_layout",
		"torch.Size", "torch.Tensor", "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
		"torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
		"torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr_tensor",
		"torch._utils._rebuild_meta_tensor_no_storage",
		// 2.x
		"torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
		"torch.device", "_codecs.encode",
	} {
		m[g] = true
	}
	for _, d := range []string{"complex32", "complex64", "complex128", "float16", "float32", "float64",
		"int8", "int16", "int32", "int64", "bfloat16", "bool", "uint8"} {
		m["torch."+d] = true
	}
	dense := []string{"BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short"}
	for _, mod := range []string{"torch", "torch.cuda"} {
		for _, t := range append(dense, "ComplexDouble", "ComplexFloat", "QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8") {
			m[mod+"."+t+"Storage"] = true
		}
		for _, t := range dense {
			m[mod+"."+t+"Tensor"] = true
		}
	}
	for _, mod := range []string{"torch.sparse", "torch.cuda.sparse"} {
		for _, t := range dense {
			if t != "Bool" {
				m[mod+"."+t+"Tensor"] = true
			}
		}
	}
	return m
}()

// GlobalNotAllowedError is a pickle naming a global outside allowedGlobals.
type GlobalNotAllowedError struct{ Global string }

func (e *GlobalNotAllowedError) Error() string {
	return fmt.Sprintf("the pickle names the global %s, which a weights file may not name (torch.load(weights_only=True) refuses it too); refusing to load it", e.Global)
}

// Limits on items no state dict comes near; they bound the work a small
// corrupt file can ask for.
const (
	maxLongBytes = 64 // LONG/LONG1/LONG4: the largest in torch.save files is the 10-byte magic number
	maxCallDepth = 4  // nested _rebuild_from_type_v2
)

type unpickler struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int // stack lengths at each MARK
	memo   map[int64]any
	persID func(pid any) (any, error)
}

func newUnpickler(data []byte, persID func(any) (any, error)) *unpickler {
	return &unpickler{data: data, memo: map[int64]any{}, persID: persID}
}

func (u *unpickler) errorf(format string, args ...any) error {
	return fmt.Errorf("pickle offset %d: %s", u.pos, fmt.Sprintf(format, args...))
}

// take returns the next n bytes, refusing a length beyond the input before
// anything is allocated.
func (u *unpickler) take(n uint64) ([]byte, error) {
	if rest := uint64(len(u.data) - u.pos); n > rest {
		return nil, u.errorf("an item of %d bytes, but only %d bytes remain: corrupt or truncated file", n, rest)
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.take(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line returns the text up to the next newline, without it.
func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", u.errorf("a text argument without its newline")
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) floor() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errorf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errorf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns (a copy of) the items above the last MARK and removes
// them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("no MARK to pop to")
	}
	k := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[k:]...)
	u.stack = u.stack[:k]
	return items, nil
}

func (u *unpickler) global(module, name string) error {
	g := pyGlobal{module, name}
	if !allowedGlobals[g.String()] {
		return &GlobalNotAllowedError{g.String()}
	}
	u.push(g)
	return nil
}

// load runs the pickle from the current position to its STOP.
func (u *unpickler) load() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, u.errorf("the pickle ends without STOP: truncated file")
		}
		op := u.data[u.pos]
		u.pos++
		if op == '.' { // STOP
			return u.pop()
		}
		if err := u.step(op); err != nil {
			return nil, err
		}
	}
}

// step runs one opcode (see Python's pickletools for their meaning).
func (u *unpickler) step(op byte) error {
	run := opcodes[op]
	if run == nil {
		return u.errorf("opcode 0x%02x is not one a weights file uses", op)
	}
	return run(u, op)
}

// opcodes maps every opcode a weights file may use to the method running
// it; the others are refused. Methods shared by a family of opcodes tell
// them apart by op.
var opcodes = [256]func(u *unpickler, op byte) error{
	// Framing and the stack.
	0x80: (*unpickler).opProto,
	0x95: (*unpickler).opFrame,
	'(':  (*unpickler).opMark,
	'0':  (*unpickler).opPop,
	'1':  (*unpickler).opPopMark,
	'2':  (*unpickler).opDup,

	// Constants and numbers.
	'N':  (*unpickler).opConst,
	0x88: (*unpickler).opConst, // NEWTRUE
	0x89: (*unpickler).opConst, // NEWFALSE
	'I':  (*unpickler).opInt,
	'J':  (*unpickler).opBinInt,
	'K':  (*unpickler).opBinInt,
	'M':  (*unpickler).opBinInt,
	'L':  (*unpickler).opLong,
	0x8a: (*unpickler).opBinLong, // LONG1
	0x8b: (*unpickler).opBinLong, // LONG4
	'F':  (*unpickler).opFloat,
	'G':  (*unpickler).opBinFloat,

	// Strings and bytes.
	'S':  (*unpickler).opString,
	'V':  (*unpickler).opUnicode,
	'T':  (*unpickler).opBinString, // BINSTRING
	'X':  (*unpickler).opBinString, // BINUNICODE
	'B':  (*unpickler).opBinString, // BINBYTES
	'U':  (*unpickler).opBinString, // SHORT_BINSTRING
	0x8c: (*unpickler).opBinString, // SHORT_BINUNICODE
	'C':  (*unpickler).opBinString, // SHORT_BINBYTES
	0x8d: (*unpickler).opBinString, // BINUNICODE8
	0x8e: (*unpickler).opBinString, // BINBYTES8
	0x96: (*unpickler).opBinString, // BYTEARRAY8

	// Tuples, lists and dicts.
	')':  (*unpickler).opEmptyTuple,
	't':  (*unpickler).opTuple,
	0x91: (*unpickler).opTuple, // FROZENSET
	0x85: (*unpickler).opTupleN,
	0x86: (*unpickler).opTupleN,
	0x87: (*unpickler).opTupleN,
	']':  (*unpickler).opEmptyList,
	0x8f: (*unpickler).opEmptyList, // EMPTY_SET
	'l':  (*unpickler).opList,
	'a':  (*unpickler).opAppend,
	'e':  (*unpickler).opAppends,
	0x90: (*unpickler).opAppends, // ADDITEMS
	'}':  (*unpickler).opEmptyDict,
	'd':  (*unpickler).opDict,
	's':  (*unpickler).opSetItems,
	'u':  (*unpickler).opSetItems,

	// The memo.
	'g':  (*unpickler).opGet,
	'h':  (*unpickler).opGet,
	'j':  (*unpickler).opGet,
	'p':  (*unpickler).opPut,
	'q':  (*unpickler).opPut,
	'r':  (*unpickler).opPut,
	0x94: (*unpickler).opMemoize,

	// Globals, calls and persistent ids.
	'c':  (*unpickler).opGlobal,
	0x93: (*unpickler).opStackGlobal,
	'R':  (*unpickler).opReduce,
	0x81: (*unpickler).opReduce, // NEWOBJ
	'b':  (*unpickler).opBuild,
	'Q':  (*unpickler).opPersID,
}

// Framing and the stack.

// opProto reads PROTO's version.
func (u *unpickler) opProto(byte) error {
	v, err := u.uint(1)
	if err == nil && v > 5 {
		err = u.errorf("pickle protocol %d", v)
	}
	return err
}

// opFrame reads FRAME: the data is all in memory, so only its length
// matters.
func (u *unpickler) opFrame(byte) error {
	n, err := u.uint(8)
	if err == nil && n > uint64(len(u.data)-u.pos) {
		err = u.errorf("a frame of %d bytes, but only %d bytes remain: corrupt or truncated file", n, len(u.data)-u.pos)
	}
	return err
}

func (u *unpickler) opMark(byte) error {
	u.marks = append(u.marks, len(u.stack))
	return nil
}

func (u *unpickler) opPop(byte) error {
	_, err := u.pop()
	return err
}

func (u *unpickler) opPopMark(byte) error {
	_, err := u.popMark()
	return err
}

func (u *unpickler) opDup(byte) error {
	v, err := u.top()
	if err == nil {
		u.push(v)
	}
	return err
}

// Constants and numbers.

// opConst pushes None (N), True (NEWTRUE) or False (NEWFALSE).
func (u *unpickler) opConst(op byte) error {
	switch op {
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	default:
		u.push(false)
	}
	return nil
}

// opInt reads INT: a decimal line, or a bool as "01"/"00".
func (u *unpickler) opInt(byte) error {
	s, err := u.line()
	if err != nil {
		return err
	}
	switch s {
	case "01":
		u.push(true)
	case "00":
		u.push(false)
	default:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u.errorf("INT %q: %v", s, err)
		}
		u.push(v)
	}
	return nil
}

// opBinInt reads BININT (4 bytes, signed), BININT1 (1 byte) or BININT2
// (2 bytes).
func (u *unpickler) opBinInt(op byte) error {
	switch op {
	case 'J':
		v, err := u.uint(4)
		u.push(int64(int32(uint32(v))))
		return err
	case 'K':
		v, err := u.uint(1)
		u.push(int64(v))
		return err
	default:
		v, err := u.uint(2)
		u.push(int64(v))
		return err
	}
}

// opLong reads LONG: a decimal line, perhaps ending in L.
func (u *unpickler) opLong(byte) error {
	s, err := u.line()
	if err != nil {
		return err
	}
	s = strings.TrimSuffix(s, "L")
	if len(s) > 3*maxLongBytes {
		return u.errorf("a LONG of %d digits", len(s))
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return u.errorf("LONG %q is not a number", s)
	}
	u.push(normInt(b))
	return nil
}

// opBinLong reads LONG1 or LONG4: a 1- or 4-byte length, then a
// little-endian two's complement integer.
func (u *unpickler) opBinLong(op byte) error {
	width := 4
	if op == 0x8a {
		width = 1
	}
	n, err := u.uint(width)
	if err != nil {
		return err
	}
	if n > maxLongBytes {
		return u.errorf("a long integer of %d bytes", n)
	}
	b, err := u.take(n)
	if err != nil {
		return err
	}
	u.push(decodeLong(b))
	return nil
}

// opFloat reads FLOAT: a decimal line.
func (u *unpickler) opFloat(byte) error {
	s, err := u.line()
	if err != nil {
		return err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return u.errorf("FLOAT %q: %v", s, err)
	}
	u.push(v)
	return nil
}

// opBinFloat reads BINFLOAT: 8 bytes, big-endian.
func (u *unpickler) opBinFloat(byte) error {
	b, err := u.take(8)
	if err != nil {
		return err
	}
	u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	return nil
}

// Strings and bytes.

// opString reads STRING: a quoted repr.
func (u *unpickler) opString(byte) error {
	s, err := u.line()
	if err != nil {
		return err
	}
	v, err := unquotePy(s)
	if err != nil {
		return u.errorf("STRING: %v", err)
	}
	u.push(v)
	return nil
}

// opUnicode reads UNICODE: a raw-unicode-escape line.
func (u *unpickler) opUnicode(byte) error {
	s, err := u.line()
	if err != nil {
		return err
	}
	u.push(rawUnicode(s))
	return nil
}

// opBinString reads the length-prefixed strings and bytes: a 4-byte
// length for BINSTRING (signed), BINUNICODE and BINBYTES; 1 byte for
// their SHORT_ forms; 8 bytes for BINUNICODE8, BINBYTES8 and BYTEARRAY8.
func (u *unpickler) opBinString(op byte) error {
	switch op {
	case 'T', 'X', 'B':
		n, err := u.uint(4)
		if err != nil {
			return err
		}
		if op == 'T' && int32(uint32(n)) < 0 {
			return u.errorf("a negative length")
		}
		return u.pushBytes(op == 'B', n)
	case 'U', 0x8c, 'C':
		n, err := u.uint(1)
		if err != nil {
			return err
		}
		return u.pushBytes(op == 'C', n)
	default: // 0x8d, 0x8e, 0x96
		n, err := u.uint(8)
		if err != nil {
			return err
		}
		return u.pushBytes(op != 0x8d, n)
	}
}

// Tuples, lists and dicts.

func (u *unpickler) opEmptyTuple(byte) error {
	u.push(pyTuple{})
	return nil
}

// opTuple builds a tuple (TUPLE) or a frozenset (FROZENSET, kept as a
// tuple) from the items above the last MARK.
func (u *unpickler) opTuple(byte) error {
	items, err := u.popMark()
	u.push(pyTuple(items))
	return err
}

// opTupleN builds TUPLE1, TUPLE2 or TUPLE3 from the top of the stack.
func (u *unpickler) opTupleN(op byte) error {
	n := int(op-0x85) + 1
	if len(u.stack)-u.floor() < n {
		return u.errorf("stack underflow")
	}
	t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	u.push(t)
	return nil
}

// opEmptyList pushes an empty list (EMPTY_LIST), or a set as a list
// (EMPTY_SET).
func (u *unpickler) opEmptyList(byte) error {
	u.push(&pyList{})
	return nil
}

func (u *unpickler) opList(byte) error {
	items, err := u.popMark()
	u.push(&pyList{items})
	return err
}

func (u *unpickler) opAppend(byte) error {
	v, err := u.pop()
	if err != nil {
		return err
	}
	return u.extend([]any{v})
}

// opAppends runs APPENDS, and ADDITEMS on a set kept as a list.
func (u *unpickler) opAppends(byte) error {
	items, err := u.popMark()
	if err != nil {
		return err
	}
	return u.extend(items)
}

func (u *unpickler) opEmptyDict(byte) error {
	u.push(newDict())
	return nil
}

func (u *unpickler) opDict(byte) error {
	items, err := u.popMark()
	if err != nil {
		return err
	}
	d := newDict()
	u.push(d)
	return u.setItems(d, items)
}

// opSetItems runs SETITEM (one key and value on the stack) or SETITEMS
// (the pairs above the last MARK) on the dict below them.
func (u *unpickler) opSetItems(op byte) error {
	var items []any
	if op == 's' {
		if len(u.stack)-u.floor() < 2 {
			return u.errorf("stack underflow")
		}
		items = append(items, u.stack[len(u.stack)-2:]...)
		u.stack = u.stack[:len(u.stack)-2]
	} else {
		var err error
		if items, err = u.popMark(); err != nil {
			return err
		}
	}
	top, err := u.top()
	if err != nil {
		return err
	}
	d, ok := top.(*pyDict)
	if !ok {
		return u.errorf("SETITEM on a %s", typeName(top))
	}
	return u.setItems(d, items)
}

// The memo.

// opGet runs GET, BINGET or LONG_BINGET.
func (u *unpickler) opGet(op byte) error {
	i, err := u.memoIndex(op == 'g', op == 'h')
	if err != nil {
		return err
	}
	v, ok := u.memo[i]
	if !ok {
		return u.errorf("memo entry %d was never stored", i)
	}
	u.push(v)
	return nil
}

// opPut runs PUT, BINPUT or LONG_BINPUT.
func (u *unpickler) opPut(op byte) error {
	i, err := u.memoIndex(op == 'p', op == 'q')
	if err != nil {
		return err
	}
	v, err := u.top()
	u.memo[i] = v
	return err
}

func (u *unpickler) opMemoize(byte) error {
	v, err := u.top()
	u.memo[int64(len(u.memo))] = v
	return err
}

// Globals, calls and persistent ids.

// opGlobal reads GLOBAL: the module and the name on two lines.
func (u *unpickler) opGlobal(byte) error {
	module, err := u.line()
	if err != nil {
		return err
	}
	name, err := u.line()
	if err != nil {
		return err
	}
	return u.global(module, name)
}

// opStackGlobal runs STACK_GLOBAL: the module and the name are strings on
// the stack.
func (u *unpickler) opStackGlobal(byte) error {
	name, err1 := u.pop()
	module, err2 := u.pop()
	if err1 != nil || err2 != nil {
		return u.errorf("stack underflow")
	}
	m, ok1 := module.(string)
	n, ok2 := name.(string)
	if !ok1 || !ok2 {
		return u.errorf("STACK_GLOBAL of a %s and a %s", typeName(module), typeName(name))
	}
	return u.global(m, n)
}

// opReduce runs REDUCE or NEWOBJ: an allowed global called with a tuple.
func (u *unpickler) opReduce(byte) error {
	args, err1 := u.pop()
	fn, err2 := u.pop()
	if err1 != nil || err2 != nil {
		return u.errorf("stack underflow")
	}
	g, ok1 := fn.(pyGlobal)
	t, ok2 := args.(pyTuple)
	if !ok1 || !ok2 {
		return u.errorf("a call of a %s with a %s", typeName(fn), typeName(args))
	}
	v, err := callGlobal(g, t, 0)
	if err != nil {
		return u.errorf("%v", err)
	}
	u.push(v)
	return nil
}

// opBuild runs BUILD: an OrderedDict's attributes (_metadata) or a
// tensor's state; neither is needed.
func (u *unpickler) opBuild(byte) error {
	if _, err := u.pop(); err != nil {
		return err
	}
	top, err := u.top()
	if err != nil {
		return err
	}
	switch top.(type) {
	case *pyDict, *pyTensor:
		return nil
	default:
		return u.errorf("BUILD on a %s", typeName(top))
	}
}

// opPersID runs BINPERSID: a storage named by the persistent id on the
// stack.
func (u *unpickler) opPersID(byte) error {
	pid, err := u.pop()
	if err != nil {
		return err
	}
	if u.persID == nil {
		return u.errorf("a persistent id outside the data pickle")
	}
	v, err := u.persID(pid)
	if err != nil {
		return u.errorf("%v", err)
	}
	u.push(v)
	return nil
}

func (u *unpickler) pushBytes(raw bool, n uint64) error {
	b, err := u.take(n)
	if err != nil {
		return err
	}
	if raw {
		u.push(append([]byte(nil), b...))
	} else {
		u.push(string(b))
	}
	return nil
}

// memoIndex reads a GET/PUT index: text, 1 byte or 4 bytes.
func (u *unpickler) memoIndex(text, short bool) (int64, error) {
	switch {
	case text:
		s, err := u.line()
		if err != nil {
			return 0, err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, u.errorf("memo index %q: %v", s, err)
		}
		return i, nil
	case short:
		v, err := u.uint(1)
		return int64(v), err
	default:
		v, err := u.uint(4)
		return int64(v), err
	}
}

func (u *unpickler) extend(items []any) error {
	top, err := u.top()
	if err != nil {
		return err
	}
	l, ok := top.(*pyList)
	if !ok {
		return u.errorf("APPEND to a %s", typeName(top))
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return u.errorf("a dict from an odd number of items")
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

// callGlobal applies an allowed global to its arguments (REDUCE, NEWOBJ).
func callGlobal(g pyGlobal, args pyTuple, depth int) (any, error) {
	switch g.String() {
	case "collections.OrderedDict":
		if len(args) == 0 {
			return newDict(), nil
		}
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		// (storage, offset, size, stride[, requires_grad, hooks[, metadata]])
		if len(args) != 4 && len(args) != 6 && len(args) != 7 {
			break
		}
		st, ok1 := args[0].(*pyStorage)
		off, ok2 := args[1].(int64)
		size, err1 := intTuple(args[2])
		stride, err2 := intTuple(args[3])
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			break
		}
		return &pyTensor{storage: st, offset: off, size: size, stride: stride}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch.nn.parameter.Parameter":
		if len(args) >= 1 && len(args) <= 4 {
			if t, ok := args[0].(*pyTensor); ok {
				return t, nil
			}
		}
	case "torch._tensor._rebuild_from_type_v2": // (func, type, args, state)
		if len(args) == 4 && depth < maxCallDepth {
			fn, ok1 := args[0].(pyGlobal)
			inner, ok2 := args[2].(pyTuple)
			if ok1 && ok2 {
				return callGlobal(fn, inner, depth+1)
			}
		}
	case "torch.Size":
		if len(args) == 1 {
			if t, ok := args[0].(pyTuple); ok {
				return t, nil
			}
		}
	case "torch.device":
		if len(args) >= 1 {
			if s, ok := args[0].(string); ok {
				return s, nil
			}
		}
	case "_codecs.encode": // how protocol 2 pickles bytes: encode(text, "latin1")
		if len(args) == 2 {
			s, ok := args[0].(string)
			if enc, _ := args[1].(string); ok && (enc == "latin1" || enc == "latin-1") {
				b := make([]byte, 0, len(s))
				for _, r := range s {
					if r > 0xff {
						return nil, fmt.Errorf("_codecs.encode: %q is not latin-1", r)
					}
					b = append(b, byte(r))
				}
				return b, nil
			}
		}
	default:
		return nil, fmt.Errorf("%s is allowed in weights files, but robarch cannot rebuild it", g)
	}
	return nil, fmt.Errorf("%s called with %d arguments of unexpected types", g, len(args))
}

// intTuple reads a tensor's size or stride.
func intTuple(v any) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("a %s instead of a tuple of integers", typeName(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("a %s in a tuple of integers", typeName(x))
		}
		out[i] = n
	}
	return out, nil
}

// normInt returns an int64 where the value fits one.
func normInt(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	return b
}

// decodeLong reads a little-endian two's complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normInt(v)
}

// unquotePy decodes a Python 2 string repr as protocol 0's STRING has it.
func unquotePy(s string) (string, error) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", fmt.Errorf("%.20q is not quoted", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i >= len(s) {
			return "", fmt.Errorf("a trailing backslash")
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\', '\'', '"':
			b.WriteByte(s[i])
		case 'x':
			if i+3 > len(s) {
				return "", fmt.Errorf("a short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("\\x escape: %v", err)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// rawUnicode decodes raw-unicode-escape text: \uXXXX and \UXXXXXXXX
// escapes, every other byte a Latin-1 character.
func rawUnicode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n <= len(s) {
				if v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
					b.WriteRune(rune(v))
					i += 1 + n
					continue
				}
			}
		}
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// typeName names a pickled value's type for error messages (values
// themselves can be large or cyclic, so they are never printed).
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case pyGlobal:
		return "global " + v.String()
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case *pyStorage:
		return "storage"
	case *pyTensor:
		return "tensor"
	default:
		return reflect.TypeOf(v).String()
	}
}
