"""scripts/rows_over_models.py: shortcut rows summarised over several models of each recipe."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import rows_over_models  # noqa: E402


def _output(mp3: float, shift: float) -> str:
    return (
        "model x; 80 dev calls\n\n| variation | calls | mean dlogit | humans / robots | mean abs dlogit | / spread | "
        "shift at threshold / slope | mean abs dp | verdicts flipped | flipped within 0.1 of threshold |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        f"| MP3 round trip (16 kHz, ~30 kbit/s) | 79 | -0.5 | -0.1 / -0.9 | {mp3} | 0.09 | {shift:+.3f} / -0.020 | "
        "0.03 | 3.8 % | 8.6 % of 35 |\n"
    )


def test_paired_difference_and_spread(tmp_path, capsys):
    for family, a, b in (("f1", 0.5, 0.6), ("f2", 0.9, 1.1), ("f3", 0.7, 0.8)):
        (tmp_path / f"base-{family}.md").write_text(_output(a, -0.5))
        (tmp_path / f"new-{family}.md").write_text(_output(b, -0.1))
    assert rows_over_models.main([str(tmp_path), "--recipes", "base", "new", "--min-n", "3"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("| MP3"))
    cells = [c.strip() for c in line.split("|")]
    assert cells[2].startswith("0.700 ± 0.200 [0.50-0.90] (-0.50), n=3")
    assert cells[3].startswith("0.833 ± 0.252 [0.60-1.10] (-0.10), n=3")
    assert cells[4] == "+0.133 ± 0.058 [-0.010], n=3"  # paired by family: +0.1, +0.2, +0.1; t(2) = 4.30
    assert "rule C, new vs base (no row worse by > 0.1 with its paired lower bound > 0): holds" in out


def test_rule_c_fails_a_row_worse_in_every_family_across_folders(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for family, x, y in (("f1", 0.5, 0.8), ("f2", 0.9, 1.2), ("f3", 0.7, 1.05), ("f4", 0.6, 0.85)):
        (a / f"base-{family}.md").write_text(_output(x, -0.5))
        (b / f"new-{family}.md").write_text(_output(y, -0.1))
    assert rows_over_models.main([str(a), str(b), "--recipes", "base", "new"]) == 0
    out = capsys.readouterr().out
    assert "**worse**, n=4" in out
    assert "rule C, new vs base (no row worse by > 0.1 with its paired lower bound > 0): fails on MP3 round trip" in out
    # the same differences judged against a wider margin hold
    assert rows_over_models.main([str(a), str(b), "--recipes", "base", "new", "--margin", "0.4", "--min-n", "4"]) == 0
    assert "holds" in capsys.readouterr().out
    # with the default seven families, four pairs cannot clear a recipe
    assert rows_over_models.main([str(a), str(b), "--recipes", "base", "new", "--margin", "0.4"]) == 0
    assert "cannot judge: fewer than 7 families paired on MP3 round trip (n=4)" in capsys.readouterr().out


def test_a_recipe_without_outputs_or_a_bad_margin_is_one_line(tmp_path, capsys):
    (tmp_path / "base-f1.md").write_text(_output(0.5, -0.5))
    (tmp_path / "base-f2.md").write_text(_output(0.6, -0.5))
    assert rows_over_models.main([str(tmp_path), "--recipes", "base", "nope"]) == 1
    assert "no outputs of recipe 'nope'" in capsys.readouterr().err
    assert rows_over_models.main([str(tmp_path), "--recipes", "base", "--margin", "nan"]) == 1
    assert "--margin must be >= 0" in capsys.readouterr().err


def test_recipes_sharing_a_prefix_keep_their_own_files_and_nan_rows_are_left_out(tmp_path, capsys):
    for family, x in (("f1", 0.5), ("f2", 0.7)):
        (tmp_path / f"R-{family}.md").write_text(_output(x, -0.5))
        (tmp_path / f"R-s1-{family}.md").write_text(_output(x + 0.1, -0.5))
    (tmp_path / "R-s1-f3.md").write_text(_output(float("nan"), -0.5))
    assert rows_over_models.main([str(tmp_path), "--recipes", "R", "R-s1", "--min-n", "2"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| MP3"))
    cells = [c.strip() for c in line.split("|")]
    assert cells[2].endswith("n=2") and cells[3].endswith("n=2")  # not R's 2 + R-s1's 3 files
    assert cells[4].startswith("+0.100 ± 0.000")


def test_a_missing_folder_is_one_line(tmp_path, capsys):
    assert rows_over_models.main([str(tmp_path / "nope"), "--recipes", "a"]) == 1
    assert "not a folder" in capsys.readouterr().err


def _json_output(mp3: float, shift: float) -> str:
    import json

    row = {"variation": "MP3 round trip (16 kHz, ~30 kbit/s)", "mean_abs_dlogit": mp3, "shift": shift}
    return json.dumps(
        {"model": "x", "rows": [row, {"variation": "VAD frame phase", "mean_abs_dlogit": 0.1, "shift": None}]}
    )


def test_json_outputs_are_read_before_the_markdown_of_the_same_run(tmp_path, capsys):
    for family, a, b in (("f1", 0.5, 0.6), ("f2", 0.9, 1.1), ("f3", 0.7, 0.8)):
        (tmp_path / f"base-{family}.md").write_text(_output(a, -0.5))
        (tmp_path / f"new-{family}.json").write_text(_json_output(b, -0.1))
        (tmp_path / f"new-{family}.md").write_text(_output(9.0, -0.1))  # the json of the same run wins
    assert rows_over_models.main([str(tmp_path), "--recipes", "base", "new", "--min-n", "3"]) == 0
    captured = capsys.readouterr()
    assert "already read" not in captured.err
    line = next(x for x in captured.out.splitlines() if x.startswith("| MP3"))
    cells = [c.strip() for c in line.split("|")]
    assert cells[3].startswith("0.833 ± 0.252 [0.60-1.10] (-0.10), n=3")
    assert cells[4] == "+0.133 ± 0.058 [-0.010], n=3"
    # a row whose shift is null (NaN in the run) is left out, not read as 0
    assert not any(x.startswith("| VAD frame phase") and "n=3" in x for x in captured.out.splitlines())


def test_a_broken_json_output_is_one_line(tmp_path, capsys):
    (tmp_path / "base-f1.json").write_text('{"rows": [{"variation": "x"')
    assert rows_over_models.main([str(tmp_path), "--recipes", "base"]) == 1
    err = capsys.readouterr().err
    assert "base-f1.json: not a shortcut_checks.py --json output" in err and len(err.splitlines()) == 1


def test_a_later_markdown_run_beats_an_older_json_of_the_same_name(tmp_path, capsys):
    import os

    for family, a in (("f1", 0.5), ("f2", 0.9)):
        (tmp_path / f"base-{family}.md").write_text(_output(a, -0.5))
        js, md = tmp_path / f"new-{family}.json", tmp_path / f"new-{family}.md"
        js.write_text(_json_output(5.0, -0.1))  # an old run's JSON ...
        md.write_text(_output(a + 0.2, -0.1))  # ... and a rerun printed without --json, an hour later
        os.utime(js, (md.stat().st_mtime - 3600, md.stat().st_mtime - 3600))
    assert rows_over_models.main([str(tmp_path), "--recipes", "base", "new", "--min-n", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("is newer than") == 2
    line = next(x for x in captured.out.splitlines() if x.startswith("| MP3"))
    assert [c.strip() for c in line.split("|")][4].startswith("+0.200 ± 0.000")


def test_json_values_of_the_wrong_kind_are_one_line(tmp_path, capsys):
    import json

    bad_rows = (
        {"variation": "MP3", "mean_abs_dlogit": True, "shift": 0.0},  # a boolean is not a number
        {"variation": "MP3", "mean_abs_dlogit": "0.5", "shift": 0.0},  # nor is text
        {"variation": None, "mean_abs_dlogit": 0.5, "shift": 0.0},
        {"variation": "\ud800", "mean_abs_dlogit": 0.5, "shift": 0.0},  # would fail only when printed
        {"variation": "MP3", "mean_abs_dlogit": 10**400, "shift": 0.0},
        {"variation": "MP3", "shift": 0.0},
    )
    for row in bad_rows:
        (tmp_path / "base-f1.json").write_text(json.dumps({"rows": [row]}))
        assert rows_over_models.main([str(tmp_path), "--recipes", "base"]) == 1
        err = capsys.readouterr().err
        assert "base-f1.json: not a shortcut_checks.py --json output" in err and len(err.splitlines()) == 1
    (tmp_path / "base-f1.json").write_text("[" * 100000 + "]" * 100000)
    assert rows_over_models.main([str(tmp_path), "--recipes", "base"]) == 1
    assert "not a shortcut_checks.py --json output" in capsys.readouterr().err
