rule tails:
    input:
        script=script("tails"),
        code=code("tails"),
        samples=rules.noise.output.samples,
        stats=rules.noise.output.stats,
    output:
        f"{RESULTS}/{{experiment}}/tails/{{arm}}/seed{{seed}}/step{{step}}.parquet",
    log:
        "logs/{experiment}/tails/{arm}/seed{seed}/step{step}.log",
    benchmark:
        "logs/{experiment}/tails/{arm}/seed{seed}/step{step}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=lambda w: as_json(EXPERIMENTS[w.experiment]["tails"]),
        expect=lambda w: as_json({**run_key(w), "step": int(w.step)}),
    shell:
        "python {input.script:q} --settings {params.settings:q} --samples {input.samples:q} "
        "--stats {input.stats:q} --expect {params.expect:q} --out {output:q} 2> {log:q}"


rule aggregate_tails:
    input:
        script=script("aggregate"),
        code=code("aggregate"),
        tables=lambda w: tails_files(w.experiment),
    output:
        f"{RESULTS}/{{experiment}}/tails.parquet",
    log:
        "logs/{experiment}/aggregate_tails.log",
    benchmark:
        "logs/{experiment}/aggregate_tails.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python {input.script:q} {input.tables:q} --contract tails --out {output:q} 2> {log:q}"
