package torchbuild

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// wrapper is one generated C wrapper: lines [start, end] (0-based, inclusive)
// of torch_api_generated.cpp.h, from its signature to its closing brace.
type wrapper struct {
	name       string // C name without the atg_ prefix, e.g. "_cslt_compress"
	start, end int
}

var wrapperStartRe = regexp.MustCompile(`^[A-Za-z].*\batg_([A-Za-z0-9_]+)\(.*\{\s*$`)

// parseWrappers finds every generated wrapper in the file's lines.
func parseWrappers(lines []string) ([]wrapper, error) {
	var ws []wrapper
	for i := 0; i < len(lines); i++ {
		m := wrapperStartRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		end := -1
		for j := i + 1; j < len(lines); j++ {
			if lines[j] == "}" {
				end = j
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("wrapper atg_%s at line %d has no closing brace", m[1], i+1)
		}
		ws = append(ws, wrapper{name: m[1], start: i, end: end})
		i = end
	}
	return ws, nil
}

var (
	errorLineRe = regexp.MustCompile(`torch_api_generated\.cpp\.h:(\d+):\d+: (?:fatal )?error:`)
	inFuncRe    = regexp.MustCompile(`torch_api_generated\.cpp\.h: In function '[^']*\batg_([A-Za-z0-9_]+)\(`)
)

// failingWrappers maps compiler output to the wrappers it blames: by the
// line of each error inside the generated file, and by g++'s "In function"
// context for errors reported from inside libtorch's own headers.
func failingWrappers(ws []wrapper, compilerOutput string) []string {
	set := map[string]bool{}
	known := map[string]bool{}
	for _, w := range ws {
		known[w.name] = true
	}
	// g++ may quote with typographic quotes; normalise to ASCII.
	out := strings.NewReplacer("‘", "'", "’", "'").Replace(compilerOutput)
	for _, m := range errorLineRe.FindAllStringSubmatch(out, -1) {
		line, _ := strconv.Atoi(m[1])
		if w, ok := wrapperAt(ws, line-1); ok {
			set[w.name] = true
		}
	}
	for _, m := range inFuncRe.FindAllStringSubmatch(out, -1) {
		if known[m[1]] {
			set[m[1]] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func wrapperAt(ws []wrapper, line int) (wrapper, bool) {
	i := sort.Search(len(ws), func(i int) bool { return ws[i].end >= line })
	if i < len(ws) && ws[i].start <= line {
		return ws[i], true
	}
	return wrapper{}, false
}

// StubMessage is the error a stubbed op reports when called.
func StubMessage(op, version string) string {
	return fmt.Sprintf("op %s is not available in libtorch %s", op, version)
}

// stubWrappers replaces the body of each named wrapper with one that throws
// inside PROTECT, so the Go side receives the error through gotch's usual
// last-error path; the fallback return after PROTECT is kept as it was.
func stubWrappers(lines []string, ws []wrapper, names []string, version string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := make([]string, 0, len(lines))
	prev := 0
	for _, w := range ws {
		if !want[w.name] {
			continue
		}
		delete(want, w.name)
		body, err := stubBody(lines[w.start:w.end+1], StubMessage(w.name, version))
		if err != nil {
			return nil, fmt.Errorf("stub atg_%s: %w", w.name, err)
		}
		out = append(out, lines[prev:w.start]...)
		out = append(out, body...)
		prev = w.end + 1
	}
	out = append(out, lines[prev:]...)
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("no wrapper named %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func stubBody(fn []string, msg string) ([]string, error) {
	open, close := -1, -1
	for i, l := range fn {
		t := strings.TrimSpace(l)
		if open < 0 && t == "PROTECT(" {
			open = i
		} else if open >= 0 && t == ")" {
			close = i
		}
	}
	if open < 0 || close < 0 {
		return nil, fmt.Errorf("no PROTECT( ... ) block")
	}
	out := append([]string{}, fn[:open+1]...)
	out = append(out, fmt.Sprintf("    throw std::runtime_error(%s);", strconv.Quote(msg)))
	out = append(out, fn[close:]...)
	return out, nil
}
