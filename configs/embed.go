// Package configs embeds robarch's bundled YAML files (model presets, and
// later sweeps and recipes) so the binary and the libraries work without the
// source tree next to them.
package configs

import "embed"

// FS holds the bundled configuration files, addressed by their paths under
// configs/ (for example "models/resnet50.yaml").
//
// Add further directories to the pattern list below (for example
// sweeps/*.yaml) as they gain files.
//
//go:embed models/*.yaml sweeps/*.yaml
var FS embed.FS

// ModelsDir is the directory of model presets inside FS.
const ModelsDir = "models"
