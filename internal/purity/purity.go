// Package purity lists the packages of robarch that must stay pure Go: no
// cgo and no gotch among their imports, so that sweep files, recipes and
// reports can be read, planned and analysed on a machine without
// libtorch. Its test (and `make lint`) checks them with `go list -deps`.
package purity

// Packages are the pure packages, as import paths relative to the module.
var Packages = []string{
	"arch",
	"recipe",
	"internal/attackname",
	"internal/devicename",
	"internal/precision",
	"sweep",
	"study",
	"results",
	"guidelines",
	"guidelines/paper",
	"guidelines/figure",
	"sweep/planreport",
}
