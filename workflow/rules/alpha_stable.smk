# The α-stable study (DESIGN.md §11), for the experiments of study `optimizers` whose
# `alpha_stable.enabled`: per-example gradients of each run's checkpoints reduced to what claims
# S1–S3 read (one table per run). The claims and figures rules read the tables (common.smk:
# claims_inputs, figure_inputs).


rule alpha_stable:
    input:
        script=script("alpha_stable"),
        code=code("alpha_stable"),
        checkpoints=rules.train.output.checkpoints,
    output:
        f"{RESULTS}/{{experiment}}/alpha_stable/{{arm}}/seed{{seed}}.parquet",
    log:
        "logs/{experiment}/alpha_stable/{arm}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/alpha_stable/{arm}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("noise", "mem_mb"),  # a gradient pass over the data: sized like it
        runtime=job_resource("noise", "runtime"),
        gpu=gpus,
    params:
        settings=alpha_stable_settings,
    shell:
        "python {input.script:q} --settings {params.settings:q} "
        "--checkpoints {input.checkpoints:q} --out {output:q} --threads {threads} 2> {log:q}"
