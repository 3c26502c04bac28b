# What the studies of DESIGN.md §10 add to the stages every experiment runs: fits of the distance
# from the initialization (large batches) and each study's figures.


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


rule large_batch_figures:
    input:
        script=script("figures"),
        code=code("figures"),
        tails=f"{RESULTS}/{{experiment}}/tails.parquet",
        histories=lambda w: histories(w.experiment),
        sharpness=lambda w: sharpness_files(w.experiment),
        fits=f"{RESULTS}/{{experiment}}/large_batch/distance_fits.parquet",
    output:
        figure_outputs("large_batch_figures"),
    log:
        "logs/{experiment}/large_batch_figures.log",
    benchmark:
        "logs/{experiment}/large_batch_figures.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=figure_settings,
        outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
    shell:
        "python {input.script:q} large_batch_figures --settings {params.settings:q} "
        "--tails {input.tails:q} --histories {input.histories:q} --sharpness {input.sharpness:q} "
        "--fits {input.fits:q} --outdir {params.outdir:q} 2> {log:q}"


rule random_labels_figures:
    input:
        script=script("figures"),
        code=code("figures"),
        tails=f"{RESULTS}/{{experiment}}/tails.parquet",
        histories=lambda w: histories(w.experiment),
        sharpness=lambda w: sharpness_files(w.experiment),
    output:
        figure_outputs("random_labels_figures"),
    log:
        "logs/{experiment}/random_labels_figures.log",
    benchmark:
        "logs/{experiment}/random_labels_figures.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=figure_settings,
        outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
    shell:
        "python {input.script:q} random_labels_figures --settings {params.settings:q} "
        "--tails {input.tails:q} --histories {input.histories:q} --sharpness {input.sharpness:q} "
        "--outdir {params.outdir:q} 2> {log:q}"
