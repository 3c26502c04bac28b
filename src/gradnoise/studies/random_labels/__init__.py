"""Liu, Papailiopoulos & Achlioptas (2020), random-label pretraining (DESIGN.md §10b): claims R1–R4, figures."""
