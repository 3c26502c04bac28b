# Figures, one job per figure set of an experiment's studies (gradnoise.studies.FIGURE_SETS: its
# figures, the tables it reads, its entry point), and the claims table. A rule's outputs cannot be a
# function of a wildcard, and each figure keeps its own report caption, so the one figures rule is
# defined once per set, named after it.
for figure_set in FIGURE_SETS:

    rule:
        name:
            figure_set
        input:
            unpack(figure_inputs(figure_set)),
        output:
            figure_outputs(figure_set),
        log:
            f"logs/{{experiment}}/{figure_set}.log",
        benchmark:
            f"logs/{{experiment}}/{figure_set}.benchmark.tsv"
        conda:
            "../envs/gradnoise.yaml"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=30,
        params:
            figure_set=figure_set,  # bound now: the shell string is formatted when the job runs
            settings=figure_settings,
            inputs=input_arguments,
            outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
        shell:
            "python {input.script:q} {params.figure_set} --settings {params.settings:q} "
            "{params.inputs} --outdir {params.outdir:q} 2> {log:q}"


rule claims:
    input:
        unpack(claims_inputs),
    output:
        md=report(
            f"{RESULTS}/{{experiment}}/claims.md",
            caption="../report/claims.rst",
            category="{experiment}",
            subcategory="Claims",
        ),
        parquet=f"{RESULTS}/{{experiment}}/claims.parquet",
    log:
        "logs/{experiment}/claims.log",
    benchmark:
        "logs/{experiment}/claims.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=claims_settings,
        inputs=input_arguments,
    shell:
        "python {input.script:q} --settings {params.settings:q} --experiment {wildcards.experiment} "
        "{params.inputs} --out-md {output.md:q} --out-parquet {output.parquet:q} 2> {log:q}"
