rule sharpness:
    input:
        script=script("sharpness"),
        code=code("sharpness"),
        factories=factory_code("sharpness"),
        checkpoints=rules.train.output.checkpoints,
        history=rules.train.output.history,
    output:
        f"{RESULTS}/{{experiment}}/sharpness/{{arm}}/seed{{seed}}.parquet",
    log:
        "logs/{experiment}/sharpness/{arm}/seed{seed}.log",
    benchmark:
        "logs/{experiment}/sharpness/{arm}/seed{seed}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("sharpness", "mem_mb"),
        runtime=job_resource("sharpness", "runtime"),
        gpu=gpus,
    params:
        settings=sharpness_settings,
        checkpoint=final_checkpoint,
    shell:
        "python {input.script:q} --settings {params.settings:q} --checkpoint {params.checkpoint:q} "
        "--history {input.history:q} --out {output:q} --threads {threads} 2> {log:q}"
