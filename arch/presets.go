package arch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/robarch/robarch/configs"
)

// ErrUnknownPreset is returned (wrapped) by Get for a name not in the
// registry.
var ErrUnknownPreset = errors.New("unknown preset")

// List returns the registry's preset names, sorted. The registry is the
// set of YAML files under configs/models, embedded in the binary; a
// preset's name is its file name without ".yaml".
func List() []string {
	entries, err := fs.ReadDir(configs.FS, configs.ModelsDir)
	if err != nil {
		return nil // the embed pattern guarantees the directory
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Get returns the preset called name with defaults filled in. Each call
// returns a fresh copy.
func Get(name string) (Spec, error) {
	if !slices.Contains(List(), name) {
		return Spec{}, fmt.Errorf("%w %q: want one of %s", ErrUnknownPreset, name, strings.Join(List(), ", "))
	}
	p := path.Join(configs.ModelsDir, name+".yaml")
	data, err := configs.FS.ReadFile(p)
	if err != nil {
		return Spec{}, fmt.Errorf("preset %s: %w", name, err)
	}
	s, err := Parse(data, "yaml")
	if err != nil {
		return Spec{}, fmt.Errorf("preset %s: %w", name, err)
	}
	if s.Name == "" {
		s.Name = name
	}
	return s, nil
}

// GetOrLoad resolves a command-line argument: a preset name, or else the
// path of a spec file.
func GetOrLoad(nameOrPath string) (Spec, error) {
	if slices.Contains(List(), nameOrPath) {
		return Get(nameOrPath)
	}
	if _, err := os.Stat(nameOrPath); err != nil {
		return Spec{}, fmt.Errorf("%q is neither a preset (%s) nor a readable spec file: %w", nameOrPath, strings.Join(List(), ", "), err)
	}
	return Load(nameOrPath)
}

// Load reads a spec from a YAML (.yaml, .yml) or JSON (.json) file, fills
// in defaults and validates it.
func Load(file string) (Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Spec{}, fmt.Errorf("load spec: %w", err)
	}
	format := "yaml"
	if strings.EqualFold(filepath.Ext(file), ".json") {
		format = "json"
	}
	s, err := Parse(data, format)
	if err != nil {
		return Spec{}, fmt.Errorf("load spec %s: %w", file, err)
	}
	return s, nil
}

// Parse decodes a spec from YAML or JSON ("yaml" or "json"), rejecting
// unknown fields, then fills in defaults and validates it.
func Parse(data []byte, format string) (Spec, error) {
	var s Spec
	switch format {
	case "yaml", "yml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			return Spec{}, fmt.Errorf("decode YAML: %w", err)
		}
	case "json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return Spec{}, fmt.Errorf("decode JSON: %w", err)
		}
	default:
		return Spec{}, fmt.Errorf("spec format %q: want yaml or json", format)
	}
	s = s.WithDefaults()
	if err := Check(s); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// EncodeYAML writes s as YAML.
func EncodeYAML(s Spec) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode spec as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode spec as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// EncodeJSON writes s as indented JSON.
func EncodeJSON(s Spec) ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode spec as JSON: %w", err)
	}
	return append(data, '\n'), nil
}

// ParseInput reads an input shape "CxHxW" (e.g. "3x224x224") or "HxW"
// (channels unchanged, returned as 0).
func ParseInput(text string) (channels, height, width int, err error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(text)), "x")
	nums := make([]int, len(parts))
	for i, p := range parts {
		var n int
		if _, e := fmt.Sscanf(p, "%d", &n); e != nil || n < 1 || fmt.Sprint(n) != p {
			return 0, 0, 0, fmt.Errorf("input %q: want CxHxW or HxW with positive integers, e.g. 3x224x224", text)
		}
		nums[i] = n
	}
	switch len(nums) {
	case 3:
		return nums[0], nums[1], nums[2], nil
	case 2:
		return 0, nums[0], nums[1], nil
	}
	return 0, 0, 0, fmt.Errorf("input %q: want CxHxW or HxW with positive integers, e.g. 3x224x224", text)
}
