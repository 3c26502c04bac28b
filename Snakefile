# gradnoise: does heavy-tailed gradient noise explain why SGD generalizes better than Adam?
# Read top to bottom: the config and its validation (common.smk), one file per stage, the targets.

from snakemake.utils import min_version

min_version("9.0")


# config/config.yaml is the default; a --configfile replaces it instead of being merged into it.
if not config:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/noise.smk"
include: "workflow/rules/tails.smk"
include: "workflow/rules/sharpness.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/escape.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/studies.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
