// Package devicename is the one syntax of device names (cpu, cuda,
// cuda:N), pure Go so that a sweep file's device is checked at load
// without libtorch; internal/torchrt resolves a name against the devices
// libtorch sees.
package devicename

import (
	"fmt"
	"strconv"
	"strings"
)

// Name is a parsed device name.
type Name struct {
	CUDA  bool
	Index int // the CUDA device; 0 for cpu and for plain "cuda"
}

// Parse reads cpu (or empty), cuda or cuda:N, in any case.
func Parse(s string) (Name, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	switch {
	case n == "" || n == "cpu":
		return Name{}, nil
	case n == "cuda":
		return Name{CUDA: true}, nil
	}
	rest, ok := strings.CutPrefix(n, "cuda:")
	if !ok {
		return Name{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N", s)
	}
	idx, err := strconv.Atoi(rest)
	if err != nil || idx < 0 || strconv.Itoa(idx) != rest {
		return Name{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N with N >= 0", s)
	}
	return Name{CUDA: true, Index: idx}, nil
}

// String is the canonical spelling.
func (n Name) String() string {
	if !n.CUDA {
		return "cpu"
	}
	return "cuda:" + strconv.Itoa(n.Index)
}
