package attack

import (
	"github.com/robarch/robarch/internal/attackname"
)

// Names lists the attack names ByName accepts (pgdK stands for any K).
func Names() []string { return attackname.Names() }

// ByName builds an attack from its short name (internal/attackname's
// vocabulary) with the standard settings of its paper: fgsm; pgdK (K
// steps of size 2.5·ε/K from a random start, cross-entropy; pgdK-cw and
// pgdK-dlr change the loss); apgd-ce, apgd-dlr, apgd-t (100 iterations, 9
// targets); fab-t (100 iterations, 9 targets); square (5000 queries); aa
// (AutoAttack standard) and aa-fast.
func ByName(name string, norm Norm, eps float64, seed int64) (Attack, error) {
	n, err := attackname.Parse(name)
	if err != nil {
		return nil, err
	}
	var a Attack
	switch n.Kind {
	case attackname.FGSM:
		a = FGSM{Norm: norm, Eps: eps}
	case attackname.APGDCE:
		a = APGD{Norm: norm, Eps: eps, Loss: CE, Seed: seed}
	case attackname.APGDDLR:
		a = APGD{Norm: norm, Eps: eps, Loss: DLR, Seed: seed}
	case attackname.APGDT:
		a = APGD{Norm: norm, Eps: eps, Targeted: true, Seed: seed}
	case attackname.FABT:
		a = FAB{Norm: norm, Eps: eps, Seed: seed}
	case attackname.Square:
		a = Square{Norm: norm, Eps: eps, Seed: seed}
	case attackname.AA:
		a = &AutoAttack{Version: Standard, Norm: norm, Eps: eps, Seed: seed}
	case attackname.AAFast:
		a = &AutoAttack{Version: Fast, Norm: norm, Eps: eps, Seed: seed}
	case attackname.PGD:
		a = PGD{Norm: norm, Eps: eps, Steps: n.Steps, RandomStart: true, Loss: Loss(n.Loss), Seed: seed}
	}
	if v, ok := a.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return a, nil
}
