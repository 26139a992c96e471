// Package torchbuild prepares the gotch module for the libtorch found on this
// machine: it writes gotch's cgo flags for that libtorch (CPU or CUDA, either
// C++ ABI), replaces the generated wrappers that do not compile against it with
// ones that return a clear error, and points the Go build at the prepared copy
// through a git-ignored go.work. gotch ships flags for one CUDA libtorch 2.1
// layout only, so without this step nothing that imports gotch builds here.
package torchbuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Libtorch describes one libtorch installation.
type Libtorch struct {
	Root        string   `json:"root"`         // $LIBTORCH, or "" for the system install
	IncludeDirs []string `json:"include_dirs"` // extra -I dirs beyond the compiler's defaults
	LibDir      string   `json:"lib_dir"`
	Version     string   `json:"version"`
	CUDA        bool     `json:"cuda"`
	CXX11ABI    bool     `json:"cxx11_abi"`
}

// System is where Debian's libtorch-dev puts libtorch.
var systemLayout = struct{ include, api, lib string }{
	include: "/usr/include/torch",
	api:     "/usr/include/torch/csrc/api/include",
	lib:     "/usr/lib/x86_64-linux-gnu",
}

// ErrNotFound is returned when no libtorch can be found.
var ErrNotFound = errors.New("libtorch not found")

// Locate finds libtorch: the folder named by root (a pytorch.org libtorch
// folder or a pip torch package folder) when root is not empty, else the
// system install.
func Locate(root string) (*Libtorch, error) {
	if root != "" {
		return locateRoot(root)
	}
	return locateSystem(systemLayout.include, systemLayout.api, systemLayout.lib)
}

func locateRoot(root string) (*Libtorch, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("LIBTORCH=%s: %w", root, err)
	}
	inc := filepath.Join(abs, "include")
	lib := filepath.Join(abs, "lib")
	api := filepath.Join(inc, "torch", "csrc", "api", "include")
	if !exists(filepath.Join(lib, "libtorch.so")) || !exists(filepath.Join(api, "torch", "torch.h")) {
		return nil, fmt.Errorf("LIBTORCH=%s: want lib/libtorch.so and include/torch/csrc/api/include/torch/torch.h under it (a pytorch.org libtorch folder or a pip torch package folder): %w", root, ErrNotFound)
	}
	lt := &Libtorch{Root: abs, IncludeDirs: []string{inc, api}, LibDir: lib}
	lt.Version = rootVersion(abs, api)
	if err := lt.detectLib(); err != nil {
		return nil, err
	}
	return lt, nil
}

func locateSystem(include, api, lib string) (*Libtorch, error) {
	if !exists(filepath.Join(lib, "libtorch.so")) || !exists(filepath.Join(api, "torch", "torch.h")) {
		return nil, fmt.Errorf("no system libtorch (%s, %s/libtorch.so); install libtorch-dev or set LIBTORCH: %w", include, lib, ErrNotFound)
	}
	// /usr/include is on the default path already; adding /usr/include/torch
	// too makes OrderedDict clash, so only the C++ API folder is added.
	lt := &Libtorch{IncludeDirs: []string{api}, LibDir: lib}
	lt.Version = debianVersion("libtorch-dev")
	if lt.Version == "" {
		lt.Version = headerVersion(api)
	}
	if err := lt.detectLib(); err != nil {
		return nil, err
	}
	return lt, nil
}

func (lt *Libtorch) detectLib() error {
	lt.CUDA = exists(filepath.Join(lt.LibDir, "libtorch_cuda.so"))
	abi, err := detectCXX11ABI(filepath.Join(lt.LibDir, "libc10.so"))
	if err != nil {
		return err
	}
	lt.CXX11ABI = abi
	if lt.Version == "" {
		lt.Version = "unknown"
	}
	return nil
}

// detectCXX11ABI reads the dynamic symbols of lib: a library built with the
// CXX11 ABI exports std::__cxx11 names (std::string lives there).
func detectCXX11ABI(lib string) (bool, error) {
	f, err := elf.Open(lib)
	if err != nil {
		return false, fmt.Errorf("read symbols of %s: %w", lib, err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return false, fmt.Errorf("read symbols of %s: %w", lib, err)
	}
	for _, s := range syms {
		if strings.Contains(s.Name, "__cxx11") {
			return true, nil
		}
	}
	return false, nil
}

var (
	pipVersionRe  = regexp.MustCompile(`(?m)^__version__\s*=\s*['"]([^'"]+)['"]`)
	headerMacroRe = regexp.MustCompile(`#define TORCH_VERSION_(MAJOR|MINOR|PATCH) (\d+)`)
)

// rootVersion reads the version of a libtorch folder: pytorch.org zips carry
// build-version, pip packages version.py, both carry the C++ header.
func rootVersion(root, api string) string {
	if b, err := os.ReadFile(filepath.Join(root, "build-version")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(root, "version.py")); err == nil {
		if m := pipVersionRe.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	return headerVersion(api)
}

func headerVersion(api string) string {
	b, err := os.ReadFile(filepath.Join(api, "torch", "version.h"))
	if err != nil {
		return ""
	}
	return parseHeaderVersion(string(b))
}

func parseHeaderVersion(text string) string {
	parts := map[string]string{}
	for _, m := range headerMacroRe.FindAllStringSubmatch(text, -1) {
		parts[m[1]] = m[2]
	}
	if parts["MAJOR"] == "" || parts["MINOR"] == "" {
		return ""
	}
	v := parts["MAJOR"] + "." + parts["MINOR"]
	if parts["PATCH"] != "" {
		v += "." + parts["PATCH"]
	}
	return v
}

// debianVersion returns the upstream version of an installed Debian package
// ("1.13.1+dfsg-4" → "1.13.1"), or "" when dpkg does not know it. Debian's
// 1.13.1 headers still say 1.13.0, so the package is the better witness.
func debianVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return upstreamVersion(string(out))
}

func upstreamVersion(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.IndexAny(v, "+-~"); i >= 0 {
		v = v[:i]
	}
	return v
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
