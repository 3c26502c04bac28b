rule noise:
    input:
        script=script("noise"),
        code=code("noise"),
        factories=factory_code("noise"),
        checkpoints=rules.train.output.checkpoints,
    output:
        samples=f"{RESULTS}/{{experiment}}/noise/{{arm}}/seed{{seed}}/step{{step}}.parquet",
        stats=f"{RESULTS}/{{experiment}}/noise/{{arm}}/seed{{seed}}/step{{step}}.stats.parquet",
    log:
        "logs/{experiment}/noise/{arm}/seed{seed}/step{step}.log",
    benchmark:
        "logs/{experiment}/noise/{arm}/seed{seed}/step{step}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: lambda w: EXPERIMENTS[w.experiment]["threads"]
    resources:
        mem_mb=job_resource("noise", "mem_mb"),
        runtime=job_resource("noise", "runtime"),
        gpu=gpus,
    params:
        settings=noise_settings,
    shell:
        "python {input.script:q} --settings {params.settings:q} "
        "--checkpoint {input.checkpoints:q}/step{wildcards.step}.pt "
        "--out {output.samples:q} --out-stats {output.stats:q} --threads {threads} 2> {log:q}"
