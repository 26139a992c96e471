package attack

import (
	"fmt"
	"strconv"
	"strings"
)

// Names lists the attack names ByName accepts (pgdK stands for any K).
func Names() []string {
	return []string{"fgsm", "pgdK", "pgdK-cw", "pgdK-dlr", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square", "aa", "aa-fast"}
}

// ByName builds an attack from its short name with the standard settings
// of its paper: fgsm; pgdK (K steps of size 2.5·ε/K from a random start,
// cross-entropy; pgdK-cw and pgdK-dlr change the loss); apgd-ce, apgd-dlr,
// apgd-t (100 iterations, 9 targets); fab-t (100 iterations, 9 targets);
// square (5000 queries); aa (AutoAttack standard) and aa-fast.
func ByName(name string, norm Norm, eps float64, seed int64) (Attack, error) {
	var a Attack
	switch n := strings.ToLower(strings.TrimSpace(name)); n {
	case "fgsm":
		a = FGSM{Norm: norm, Eps: eps}
	case "apgd-ce":
		a = APGD{Norm: norm, Eps: eps, Loss: CE, Seed: seed}
	case "apgd-dlr":
		a = APGD{Norm: norm, Eps: eps, Loss: DLR, Seed: seed}
	case "apgd-t":
		a = APGD{Norm: norm, Eps: eps, Targeted: true, Seed: seed}
	case "fab-t":
		a = FAB{Norm: norm, Eps: eps, Seed: seed}
	case "square":
		a = Square{Norm: norm, Eps: eps, Seed: seed}
	case "aa", "autoattack":
		a = &AutoAttack{Version: Standard, Norm: norm, Eps: eps, Seed: seed}
	case "aa-fast":
		a = &AutoAttack{Version: Fast, Norm: norm, Eps: eps, Seed: seed}
	default:
		rest, ok := strings.CutPrefix(n, "pgd")
		if !ok {
			return nil, fmt.Errorf("attack %q: want one of %s", name, strings.Join(Names(), ", "))
		}
		loss := CE
		for _, l := range []Loss{CW, DLR} {
			if r, ok := strings.CutSuffix(rest, "-"+string(l)); ok {
				rest, loss = r, l
			}
		}
		steps, err := strconv.Atoi(rest)
		if err != nil || steps < 1 {
			return nil, fmt.Errorf("attack %q: want pgdK with K >= 1 steps (e.g. pgd20), optionally -cw or -dlr", name)
		}
		a = PGD{Norm: norm, Eps: eps, Steps: steps, RandomStart: true, Loss: loss, Seed: seed}
	}
	if v, ok := a.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return a, nil
}
