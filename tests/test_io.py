"""Stage inputs are checked against their contract on read: a foreign or wrong-typed file is an
InputError naming the file and the column."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gradnoise.errors import InputError
from gradnoise.io import NOISE_SAMPLES_SCHEMA, SHARPNESS_SCHEMA, read_parquet, write_parquet
from gradnoise.tails import TAILS_SCHEMA


def test_a_wrong_typed_column_names_the_file_and_the_column(tmp_path):
    table = TAILS_SCHEMA.empty_table().set_column(
        TAILS_SCHEMA.get_field_index("seed"), "seed", pa.array([], pa.string())
    )
    path = tmp_path / "tails.parquet"
    write_parquet(table, path, {})
    with pytest.raises(
        InputError, match=r"tails\.parquet: column 'seed' has type string, expected int64"
    ):
        read_parquet(path, schema=TAILS_SCHEMA)


def test_a_missing_column_names_the_file_and_the_column(tmp_path):
    path = tmp_path / "runs.parquet"
    write_parquet(pa.table({"arm": ["sgd"], "seed": [3]}), path, {})
    with pytest.raises(InputError, match=r"runs\.parquet: column 'experiment' missing"):
        read_parquet(path, schema=SHARPNESS_SCHEMA)


def test_dictionary_encoding_and_list_size_do_not_matter(tmp_path):
    path = tmp_path / "noise.parquet"
    table = pa.table(
        {
            "split": ["train"],
            "view": ["raw"],
            "layer": ["w"],
            "sample": pa.array([0], pa.int32()),
            "norm": [1.0],
            "coords": pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 3], pa.float32()), 3),
        }
    )
    write_parquet(table, path, {})
    assert read_parquet(path, schema=NOISE_SAMPLES_SCHEMA).num_rows == 1
