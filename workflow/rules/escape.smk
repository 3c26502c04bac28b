# The escape-law stage (DESIGN.md §10c), for the experiments of study `optimizers` when
# `escape.enabled`: the real update rules on controlled landscapes with injected Gaussian and SαS
# noise (one sweep per axis and noise kind, then their fits), escapes from every run's final minimum,
# and their figures (figures.smk). The claims rule reads them for A1–A5 (common.smk: claims_inputs).


wildcard_constraints:
    axis="sharpness|height|width",
    noise="gaussian|sas",


rule escape_sweep:
    input:
        script=script("escape"),
        code=code("escape"),
        tails=escape_alpha_tails,
    output:
        f"{RESULTS}/{{experiment}}/escape/sweep_{{axis}}_{{noise}}.parquet",
    log:
        "logs/{experiment}/escape/sweep_{axis}_{noise}.log",
    benchmark:
        "logs/{experiment}/escape/sweep_{axis}_{noise}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: ESCAPE["threads"]
    resources:
        mem_mb=2000,
        runtime=60,
        gpu=escape_gpus,
    params:
        settings=escape_sweep_settings,
        inputs=input_arguments,
    shell:
        "python {input.script:q} sweep --settings {params.settings:q} {params.inputs} "
        "--out {output:q} --threads {threads} 2> {log:q}"


rule escape_slopes:
    input:
        script=script("escape"),
        code=code("escape"),
        sweeps=lambda w: escape_sweep_files(w.experiment),
    output:
        f"{RESULTS}/{{experiment}}/escape/slopes.parquet",
    log:
        "logs/{experiment}/escape/slopes.log",
    benchmark:
        "logs/{experiment}/escape/slopes.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=as_json({"level": config["claims"]["ci_level"]}),
    shell:
        "python {input.script:q} slopes --settings {params.settings:q} --sweeps {input.sweeps:q} "
        "--out {output:q} 2> {log:q}"


rule escape_minimum:
    input:
        script=script("escape"),
        code=code("escape"),
        checkpoints=rules.train.output.checkpoints,
    output:
        f"{RESULTS}/{{experiment}}/escape/minima/{{arm}}/seed{{seed}}.parquet",
    log:
        "logs/{experiment}/escape/minima/{arm}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/escape/minima/{arm}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("train", "mem_mb"),  # it continues training: sized like it
        runtime=job_resource("train", "runtime"),
        gpu=gpus,
    params:
        settings=escape_minimum_settings,
        checkpoint=final_checkpoint,
    shell:
        "python {input.script:q} minimum --settings {params.settings:q} "
        "--checkpoint {params.checkpoint:q} --out {output:q} --threads {threads} 2> {log:q}"


rule escape_minima:
    input:
        script=script("aggregate"),
        code=code("aggregate"),
        tables=lambda w: escape_minimum_files(w.experiment),
    output:
        f"{RESULTS}/{{experiment}}/escape/minima.parquet",
    log:
        "logs/{experiment}/escape/minima.log",
    benchmark:
        "logs/{experiment}/escape/minima.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} {input.tables:q} --contract escape_minima --out {output:q} "
        "2> {log:q}"
