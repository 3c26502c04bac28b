"""The registry of studies (DESIGN.md §8, §10): one record per study kind — its title, the roles its
arms play, the tables its claims read, its figure sets and its claims entry point — so that the config
checks, the workflow (workflow/rules/common.smk) and the stage scripts ask one place. Import-light:
no pandas, no torch; the entry points are "module:function" names loaded by the claims stage.

Adding a study: its module (claims over ``claims.Row``s, figures), one ``Study`` entry here, its
config and its report captions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FigureSet:
    """The figures one job draws. `figures`: their names (the outputs the workflow declares, one
    report caption each under workflow/report/); `tables`: what it reads (``gradnoise.tables``
    names); `draw`: "module:function" taking (tables, settings, ArmStyle) and returning
    {figure name: matplotlib Figure}."""

    figures: tuple[str, ...]
    tables: tuple[str, ...]
    draw: str


FIGURE_SETS: dict[str, FigureSet] = {
    "figures": FigureSet(
        figures=(
            "alpha_vs_iteration",
            "noise_histogram",
            "covariance_spectra",
            "training_curves",
            "weight_distance",
            "sharpness_vs_accuracy",
        ),
        tables=("tails", "histories", "sharpness", "noise"),
        draw="gradnoise.studies.common_plots:draw",
    ),
    "escape_figures": FigureSet(
        figures=("escape_vs_eps", "escape_sgd_vs_adam"),
        tables=("escape",),
        draw="gradnoise.studies.optimizers.plots:draw",
    ),
    "large_batch_figures": FigureSet(
        figures=(
            "accuracy_per_arm",
            "distance_vs_log_t",
            "accuracy_vs_updates",
            "alpha_vs_batch_size",
        ),
        tables=("tails", "histories", "sharpness", "fits"),
        draw="gradnoise.studies.large_batch.plots:draw",
    ),
    "random_labels_figures": FigureSet(
        figures=("accuracy_per_regime", "training_curves_both_phases", "bad_vs_good_minima"),
        tables=("tails", "histories", "sharpness"),
        draw="gradnoise.studies.random_labels.plots:draw",
    ),
    "escape_law_figures": FigureSet(
        figures=("escape_vs_sharpness", "escape_vs_width_height", "escape_from_minima"),
        tables=("escape_sweeps", "escape_minima"),
        draw="gradnoise.studies.escape_law.plots:draw",
    ),
    "alpha_stable_figures": FigureSet(
        figures=("clt_alpha_vs_batch_size", "clt_hill_plot", "clt_per_example_ccdf"),
        tables=("alpha_stable",),
        draw="gradnoise.studies.alpha_stable.plots:draw",
    ),
}

# Random labels: the pretraining arm, then per regime an arm trained from its weights (adversarial
# initialization) and one from a fresh random initialization.
REGIMES = ("vanilla", "weight_decay", "momentum", "augment", "all")


@dataclass(frozen=True)
class Study:
    """What the workflow and the claims stage need to know of a study, without importing it.

    `tables`: the inputs its claims read besides the tails table and the sharpness tables (names the
    workflow resolves to files: escape, histories, fits, escape_sweeps, escape_slopes, escape_minima);
    `claims`: "module:function" taking (tables, settings, ClaimSettings) and returning its rows."""

    kind: str
    title: str
    claims: str
    tables: tuple[str, ...] = ()
    figure_sets: tuple[str, ...] = ("figures",)
    roles: Mapping[str, str] = field(default_factory=dict)
    optional_roles: frozenset[str] = frozenset()


STUDIES: dict[str, Study] = {
    "optimizers": Study(
        kind="optimizers",
        title="Claims of Zhou et al. (2020)",
        claims="gradnoise.studies.optimizers.claims:claims",
        tables=("escape",),
        figure_sets=("figures", "escape_figures"),
    ),
    "large_batch": Study(
        kind="large_batch",
        title="Claims of Hoffer, Hubara & Soudry (2017) — large batches",
        claims="gradnoise.studies.large_batch.claims:claims",
        tables=("histories", "fits"),
        figure_sets=("figures", "large_batch_figures"),
        roles={
            "small": "sb",
            "large": "lb",
            "large_lr": "lb_lr",
            "large_gbn": "lb_lr_gbn",
            "large_ra": "lb_lr_gbn_ra",
        },
    ),
    "random_labels": Study(
        kind="random_labels",
        title="Claims of Liu, Papailiopoulos & Achlioptas (2020) — random-label pretraining",
        claims="gradnoise.studies.random_labels.claims:claims",
        tables=("histories",),
        figure_sets=("figures", "random_labels_figures"),
        roles={
            "pretrain": "pretrain",
            **{f"{r}_{init}": f"{init}_{r}" for r in REGIMES for init in ("adversarial", "random")},
        },
        optional_roles=frozenset(
            f"{r}_{init}" for r in REGIMES[1:-1] for init in ("adversarial", "random")
        ),
    ),
}

# Add-ons to a study: claims decided on the same experiment where the config enables them
# (``enabled_add_ons``), each with its own tables and figures.
ESCAPE_LAW = Study(  # Xie et al.'s escape laws (A1–A5), where `escape.enabled`
    kind="escape_law",
    title="Escape laws of the real optimizers (Xie et al.)",
    claims="gradnoise.studies.escape_law.claims:claims",
    tables=("escape", "escape_sweeps", "escape_slopes", "escape_minima"),
    figure_sets=("escape_law_figures",),
)
ALPHA_STABLE = Study(  # is the noise α-stable at all (S1–S3), where `alpha_stable.enabled`
    kind="alpha_stable",
    title="Is the gradient noise α-stable? (generalized CLT)",
    claims="gradnoise.studies.alpha_stable.claims:claims",
    tables=("alpha_stable",),
    figure_sets=("alpha_stable_figures",),
)
ADD_ONS: dict[str, tuple[Study, ...]] = {"optimizers": (ESCAPE_LAW, ALPHA_STABLE)}


def enabled_add_ons(cfg: Mapping[str, Any], exp: Mapping[str, Any]) -> set[str]:
    """The add-ons (kinds) an experiment's config enables: the escape-law stage for every experiment
    where `escape.enabled`, the α-stable study where the experiment's `alpha_stable.enabled`."""
    on = {"escape_law": cfg["escape"]["enabled"], "alpha_stable": exp["alpha_stable"]["enabled"]}
    return {kind for kind, enabled in on.items() if enabled}


def studies_of(kind: str, add_ons: set[str]) -> list[Study]:
    """The study of an experiment of this kind, then those of its add-ons in `add_ons`."""
    return [STUDIES[kind], *(a for a in ADD_ONS.get(kind, ()) if a.kind in add_ons)]


def by_kind(kind: str) -> Study:
    """A study or add-on by its kind (the claims stage's settings name them)."""
    every = {**STUDIES, **{a.kind: a for adds in ADD_ONS.values() for a in adds}}
    return every[kind]


def study_roles(exp: dict[str, Any]) -> dict[str, str]:
    """The role → arm map of an experiment: the study's defaults under the config's `roles`, without
    the optional roles whose arm the experiment does not have."""
    study = STUDIES[exp["study"]["kind"]]
    roles = {**study.roles, **exp["study"].get("roles", {})}
    arms = exp.get("arms", exp.get("optimizers", {}))
    return {r: a for r, a in roles.items() if r not in study.optional_roles or a in arms}
