"""The studies of the neighbouring papers (DESIGN.md §10): each one's measurements and claims in a module
of its own. This module holds what the config checks and the workflow need without importing them:
which roles a study's arms play, and the default arm name of each role."""

from __future__ import annotations

from typing import Any

# role → default arm name. Random labels: the pretraining arm, then per regime an arm trained from its
# weights (adversarial initialization) and one from a fresh random initialization.
REGIMES = ("vanilla", "weight_decay", "momentum", "augment", "all")
STUDY_ROLES: dict[str, dict[str, str]] = {
    "optimizers": {},
    "large_batch": {
        "small": "sb",
        "large": "lb",
        "large_lr": "lb_lr",
        "large_gbn": "lb_lr_gbn",
        "large_ra": "lb_lr_gbn_ra",
    },
    "random_labels": {
        "pretrain": "pretrain",
        **{f"{r}_{init}": f"{init}_{r}" for r in REGIMES for init in ("adversarial", "random")},
    },
}
# Roles a random-labels experiment may leave out (a regime it does not train).
OPTIONAL_ROLES = {
    "random_labels": {f"{r}_{init}" for r in REGIMES[1:-1] for init in ("adversarial", "random")}
}


def study_roles(exp: dict[str, Any]) -> dict[str, str]:
    """The role → arm map of an experiment: the study's defaults under the config's `roles`, without
    the optional roles whose arm the experiment does not have."""
    kind = exp["study"]["kind"]
    roles = {**STUDY_ROLES[kind], **exp["study"].get("roles", {})}
    arms = exp.get("arms", exp.get("optimizers", {}))
    optional = OPTIONAL_ROLES.get(kind, set())
    return {role: arm for role, arm in roles.items() if role not in optional or arm in arms}
