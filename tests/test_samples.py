"""The shipped model on the bundled samples: every verdict matches samples/labels.csv."""

import csv

import pytest
from conftest import REPO

import robodetect

ROWS = list(csv.DictReader(open(REPO / "samples" / "labels.csv")))


def test_samples_are_labelled_and_balanced():
    assert 6 <= len(ROWS) <= 10
    assert {r["label"] for r in ROWS} == {"robot", "human"}
    for r in ROWS:
        assert (REPO / "samples" / r["file"]).exists() and r["licence"]


@pytest.fixture(scope="module")
def shipped():
    return robodetect.load()


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_shipped_model_verdicts_match_labels(shipped, row):
    result = shipped.score_file(REPO / "samples" / row["file"])
    assert result.label == row["label"], f"{row['file']}: p={result.robot_probability}"
    assert result.sample_rate == 8000 and result.speech_seconds > 3.0
