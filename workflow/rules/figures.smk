rule figures:
    input:
        code("figures"),
        tails=f"{RESULTS}/{{experiment}}/tails.parquet",
        escape=f"{RESULTS}/{{experiment}}/simulate/escape.parquet",
        histories=lambda w: histories(w.experiment),
        sharpness=lambda w: sharpness_files(w.experiment),
        noise=histogram_noise_file,
    output:
        [
            report(
                f"{RESULTS}/{{experiment}}/figures/{name}.{fmt}",
                caption=f"../report/{name}.rst",
                category="{experiment}",
                subcategory="Figures",
            )
            for name in FIGURES
            for fmt in config["figures"]["formats"]
        ],
    log:
        "logs/{experiment}/figures.log",
    benchmark:
        "logs/{experiment}/figures.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=lambda w: as_json(
            {
                "figures": config["figures"],
                "dataset": EXPERIMENTS[w.experiment]["dataset"]["name"],
                "arms": arm_labels(w.experiment),
            }
        ),
        outdir=lambda w: f"{RESULTS}/{w.experiment}/figures",
    shell:
        "python scripts/figures.py --settings {params.settings:q} --tails {input.tails:q} "
        "--escape {input.escape:q} --histories {input.histories:q} --sharpness {input.sharpness:q} "
        "--noise {input.noise:q} --outdir {params.outdir:q} 2> {log:q}"


rule claims:
    input:
        code("claims", "stats"),
        tails=f"{RESULTS}/{{experiment}}/tails.parquet",
        escape=f"{RESULTS}/{{experiment}}/simulate/escape.parquet",
        sharpness=lambda w: sharpness_files(w.experiment),
    output:
        md=report(
            f"{RESULTS}/{{experiment}}/claims.md",
            caption="../report/claims.rst",
            category="{experiment}",
            subcategory="Claims",
        ),
        parquet=f"{RESULTS}/{{experiment}}/claims.parquet",
    log:
        "logs/{experiment}/claims.log",
    benchmark:
        "logs/{experiment}/claims.benchmark.tsv"
    conda:
        "../envs/gradnoise.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=lambda w: as_json(
            {"claims": config["claims"], "arms": arm_labels(w.experiment)}
        ),
    shell:
        "python scripts/claims.py --settings {params.settings:q} --experiment {wildcards.experiment} "
        "--tails {input.tails:q} --escape {input.escape:q} --sharpness {input.sharpness:q} "
        "--out-md {output.md:q} --out-parquet {output.parquet:q} 2> {log:q}"
