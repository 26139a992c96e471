// Package attackname is the one vocabulary of attack names (pgd20,
// pgd20-cw, aa, apgd-t, ...): their syntax, their canonical spelling and
// what each is. It is pure Go, so that a sweep file can be checked at
// load without libtorch; package attack builds the attacks from it.
package attackname

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is an attack family.
type Kind string

// The attacks robarch has.
const (
	FGSM    Kind = "fgsm"
	PGD     Kind = "pgd"
	APGDCE  Kind = "apgd-ce"
	APGDDLR Kind = "apgd-dlr"
	APGDT   Kind = "apgd-t"
	FABT    Kind = "fab-t"
	Square  Kind = "square"
	AA      Kind = "aa"      // AutoAttack, standard version
	AAFast  Kind = "aa-fast" // AutoAttack without FAB-T and Square
)

// Loss names of a PGD.
const (
	CE  = "ce"
	CW  = "cw"
	DLR = "dlr"
)

// Name is a parsed attack name.
type Name struct {
	Kind Kind
	// Steps and Loss of a PGD (Loss CE, CW or DLR); zero otherwise.
	Steps int
	Loss  string
}

// The name of every kind but PGD is the kind itself (fgsm, aa, ...); a
// PGD's name is pgdK, pgdK-cw or pgdK-dlr (PGDSteps, Name.String).
// autoAttackAlias is another spelling of aa that Parse accepts.
const autoAttackAlias = "autoattack"

// Names lists the names Parse accepts (pgdK stands for any K >= 1).
func Names() []string {
	k := string(PGD) + "K"
	return []string{string(FGSM), k, k + "-" + CW, k + "-" + DLR, string(APGDCE), string(APGDDLR), string(APGDT), string(FABT), string(Square), string(AA), string(AAFast)}
}

// PGDSteps is the plain cross-entropy PGD with the given number of steps
// (pgd20 for 20): the attack training's evaluations run.
func PGDSteps(steps int) Name { return Name{Kind: PGD, Steps: steps, Loss: CE} }

// Parse reads an attack name in any case; "autoattack" is aa.
func Parse(s string) (Name, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	switch Kind(n) {
	case FGSM, APGDCE, APGDDLR, APGDT, FABT, Square, AA, AAFast:
		return Name{Kind: Kind(n)}, nil
	case autoAttackAlias:
		return Name{Kind: AA}, nil
	}
	rest, ok := strings.CutPrefix(n, string(PGD))
	if !ok {
		return Name{}, fmt.Errorf("attack %q: want one of %s", s, strings.Join(Names(), ", "))
	}
	loss := CE
	for _, l := range []string{CW, DLR} {
		if r, ok := strings.CutSuffix(rest, "-"+l); ok {
			rest, loss = r, l
		}
	}
	steps, err := strconv.Atoi(rest)
	if err != nil || steps < 1 {
		return Name{}, fmt.Errorf("attack %q: want pgdK with K >= 1 steps (e.g. pgd20), optionally -cw or -dlr", s)
	}
	return Name{Kind: PGD, Steps: steps, Loss: loss}, nil
}

// String is the canonical spelling: the name a report and a store use.
func (n Name) String() string {
	if n.Kind != PGD {
		return string(n.Kind)
	}
	if n.Loss != CE && n.Loss != "" {
		return fmt.Sprintf("pgd%d-%s", n.Steps, n.Loss)
	}
	return fmt.Sprintf("pgd%d", n.Steps)
}

// IsCEPGD reports a plain cross-entropy PGD: the attack training's
// per-epoch evaluation runs, and a sweep's pgd_acc.
func (n Name) IsCEPGD() bool { return n.Kind == PGD && (n.Loss == CE || n.Loss == "") }

// IsPGD reports a PGD with any loss (pgdK, pgdK-cw, pgdK-dlr).
func (n Name) IsPGD() bool { return n.Kind == PGD }

// IsAutoAttack reports either AutoAttack version.
func (n Name) IsAutoAttack() bool { return n.Kind == AA || n.Kind == AAFast }

// IsStandardAutoAttack reports standard AutoAttack (aa, not aa-fast): the
// attack whose accuracy is aa_acc, the one RobustBench reports.
func (n Name) IsStandardAutoAttack() bool { return n.Kind == AA }

// MetricKey is the name of the stored accuracy under this attack alone:
// aa_acc for AutoAttack, pgd20_cw_acc for pgd20-cw.
func (n Name) MetricKey() string {
	return strings.ReplaceAll(n.String(), "-", "_") + "_acc"
}
