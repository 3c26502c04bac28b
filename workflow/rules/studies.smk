# What the studies of DESIGN.md §10 add to the stages every experiment runs: fits of the distance
# from the initialization (large batches). Their figures: figures.smk.


rule distance_fits:
    input:
        script=script("distance_fits"),
        code=code("distance_fits"),
        histories=lambda w: histories(w.experiment),
    output:
        f"{RESULTS}/{{experiment}}/large_batch/distance_fits.parquet",
    log:
        "logs/{experiment}/distance_fits.log",
    benchmark:
        "logs/{experiment}/distance_fits.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --histories {input.histories:q} --out {output:q} 2> {log:q}"
