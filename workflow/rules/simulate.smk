rule simulate_calibration:
    input:
        script=script("simulate"),
        code=code("simulate"),
    output:
        f"{RESULTS}/{{experiment}}/simulate/calibration.parquet",
    log:
        "logs/{experiment}/simulate/calibration.log",
    benchmark:
        "logs/{experiment}/simulate/calibration.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: config["simulate"]["threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=as_json(config["simulate"]),
    shell:
        "python {input.script:q} --settings {params.settings:q} --experiment {wildcards.experiment} "
        "--out {output:q} --threads {threads} 2> {log:q}"


rule simulate_arm:
    input:
        script=script("simulate"),
        code=code("simulate"),
        tails=lambda w: tails_files(w.experiment, w.arm),
    output:
        f"{RESULTS}/{{experiment}}/simulate/matched/{{arm}}.parquet",
    log:
        "logs/{experiment}/simulate/{arm}.log",
    benchmark:
        "logs/{experiment}/simulate/{arm}.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: config["simulate"]["threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=as_json(config["simulate"]),
    shell:
        "python {input.script:q} --settings {params.settings:q} --experiment {wildcards.experiment} "
        "--arm {wildcards.arm} --tails {input.tails:q} --out {output:q} "
        "--threads {threads} 2> {log:q}"


rule escape_table:
    input:
        script=script("aggregate"),
        code=code("aggregate"),
        tables=lambda w: [f"{RESULTS}/{w.experiment}/simulate/calibration.parquet"]
        + [
            f"{RESULTS}/{w.experiment}/simulate/matched/{arm}.parquet"
            for arm in ARMS[w.experiment]
        ],
    output:
        f"{RESULTS}/{{experiment}}/simulate/escape.parquet",
    log:
        "logs/{experiment}/simulate/escape.log",
    benchmark:
        "logs/{experiment}/simulate/escape.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} {input.tables:q} --contract escape --out {output:q} 2> {log:q}"
