rule sharpness:
    input:
        code("sharpness", "models", "data"),
        checkpoints=rules.train.output.checkpoints,
        history=rules.train.output.history,
    output:
        f"{RESULTS}/{{experiment}}/sharpness/{{optimizer}}/seed{{seed}}.parquet",
    log:
        "logs/{experiment}/sharpness/{optimizer}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/sharpness/{optimizer}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("sharpness", "mem_mb"),
        runtime=job_resource("sharpness", "runtime"),
        gpu=gpus,
    params:
        settings=sharpness_settings,
        checkpoint=lambda w: f"{run_dir(w)}/checkpoints/step{max(EXPERIMENTS[w.experiment]['checkpoints'])}.pt",
    shell:
        "python scripts/sharpness.py --settings {params.settings:q} --checkpoint {params.checkpoint:q} "
        "--history {input.history:q} --out {output:q} --threads {threads} 2> {log:q}"
