# Figures (one rule per set of figures; which sets an experiment gets depends on its study) and the
# claims table.


rule figures:
    input:
        script=script("figures"),
        code=code("figures"),
        tails=f"{RESULTS}/{{experiment}}/tails.parquet",
        histories=lambda w: histories(w.experiment),
        sharpness=lambda w: sharpness_files(w.experiment),
        noise=histogram_noise_files,
    output:
        figure_outputs("figures"),
    log:
        "logs/{experiment}/figures.log",
    benchmark:
        "logs/{experiment}/figures.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=figure_settings,
        outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
    shell:
        "python {input.script:q} figures --settings {params.settings:q} --tails {input.tails:q} "
        "--histories {input.histories:q} --sharpness {input.sharpness:q} "
        "--noise {input.noise:q} --outdir {params.outdir:q} 2> {log:q}"


rule escape_figures:
    input:
        script=script("figures"),
        code=code("figures"),
        escape=f"{RESULTS}/{{experiment}}/simulate/escape.parquet",
    output:
        figure_outputs("escape_figures"),
    log:
        "logs/{experiment}/escape_figures.log",
    benchmark:
        "logs/{experiment}/escape_figures.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=figure_settings,
        outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
    shell:
        "python {input.script:q} escape_figures --settings {params.settings:q} "
        "--escape {input.escape:q} --outdir {params.outdir:q} 2> {log:q}"


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
