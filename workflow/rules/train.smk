rule train:
    input:
        script=script("train"),
        code=code("train"),
        factories=factory_code("train"),
        init=init_checkpoints,
    output:
        history=f"{RESULTS}/{{experiment}}/train/{{arm}}/seed{{seed}}/history.parquet",
        checkpoints=directory(
            f"{RESULTS}/{{experiment}}/train/{{arm}}/seed{{seed}}/checkpoints"
        ),
    log:
        "logs/{experiment}/train/{arm}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/train/{arm}/seed{seed}.benchmark.tsv"
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
        init=init_checkpoint,
    shell:
        "python {input.script:q} --settings {params.settings:q} --run-dir {params.run_dir:q} "
        "--init={params.init:q} --threads {threads} 2> {log:q}"
