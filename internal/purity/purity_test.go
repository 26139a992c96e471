package purity

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every pure package's dependencies build with CGO_ENABLED=0 and none of
// them is gotch or one of robarch's torch packages: an import that pulls
// libtorch in (say, sweep importing train for a constant) fails here.
func TestPurePackagesNeedNoCgo(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	torch := []string{"github.com/sugarme/gotch", "robarch/internal/amp", "robarch/internal/torchrt",
		"robarch/arch/model", "robarch/train", "robarch/attack"}
	for _, pkg := range Packages {
		t.Run(pkg, func(t *testing.T) {
			cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "github.com/robarch/robarch/"+pkg)
			cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "go list -deps %s with CGO_ENABLED=0:\n%s", pkg, out)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			require.NotEmpty(t, lines)
			for _, line := range lines {
				path, cgoFiles, _ := strings.Cut(line, " ")
				assert.Equal(t, "0", cgoFiles, "%s depends on %s, which has cgo files", pkg, path)
				for _, bad := range torch {
					assert.NotContains(t, path, bad, "%s depends on a torch package", pkg)
				}
			}
		})
	}
}
