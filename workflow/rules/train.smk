rule train:
    input:
        code("train", "data", "models", "optim"),
    output:
        history=f"{RESULTS}/{{experiment}}/train/{{optimizer}}/seed{{seed}}/history.parquet",
        checkpoints=directory(
            f"{RESULTS}/{{experiment}}/train/{{optimizer}}/seed{{seed}}/checkpoints"
        ),
    log:
        "logs/{experiment}/train/{optimizer}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/train/{optimizer}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("train", "mem_mb"),
        runtime=job_resource("train", "runtime"),
        gpu=gpus,
    params:
        settings=train_settings,
        run_dir=run_dir,
    shell:
        "python scripts/train.py --settings {params.settings:q} --run-dir {params.run_dir:q} "
        "--threads {threads} 2> {log:q}"
