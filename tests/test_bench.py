"""``make bench``'s machinery at tiny size (seconds): ratios, intervals, the timings log."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis import bench


def test_paired_ratio_is_the_median_of_per_round_ratios():
    num, den = [2.0, 4.0, 6.0, 9.0, 20.0], [1.0, 2.0, 2.0, 3.0, 4.0]  # ratios 2, 2, 3, 3, 5
    e = bench.paired_ratio(num, den)
    assert e.value == 3.0 and e.low <= 3.0 <= e.high and 2.0 <= e.low and e.high <= 5.0
    assert e.n_points == 5 and not e.degenerate
    # not the ratio of medians (6 / 2 = 3 here by chance): a case where they differ
    e2 = bench.paired_ratio([1.0, 10.0, 10.0], [1.0, 1.0, 10.0])
    assert e2.value == 1.0 and float(np.median([1, 10, 10]) / np.median([1, 1, 10])) == 10.0


def test_paired_ratio_degenerate_and_errors():
    e = bench.paired_ratio([2.0, 2.0], [1.0, 1.0])
    assert e.degenerate and e.value == 2.0 and math.isinf(e.low)
    with pytest.raises(ValueError, match="equal-length"):
        bench.paired_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        bench.paired_ratio([1.0, 1.0, 1.0], [1.0, 0.0, 1.0])


def test_interleaved_times_every_round_after_warmup():
    calls = []
    times = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5 and all(len(v) == 3 for v in times.values())
    with pytest.raises(ValueError):
        bench.interleaved({"a": lambda: None}, repeats=0)


def test_chapter_runs_reads_the_last_run_with_peak_memory(tmp_path):
    log = tmp_path / "timings.tsv"
    log.write_text("2026-01-01T00:00:00+00:00\t01_x\t10.0\t{'profile': 'smoke'}\n"  # old: no peak
                   "2026-01-02T00:00:00+00:00\t01_x\t12.5\t{'profile': 'smoke'}\t900\n"
                   "2026-01-03T00:00:00+00:00\t01_x\t99.0\t{'profile': 'full'}\t1500\n"
                   "2026-01-03T00:00:00+00:00\tdemo\t0.5\t{}\t80\n")
    runs = bench.chapter_runs(log)
    assert runs["01_x"] == {"when": "2026-01-03T00:00:00+00:00", "seconds": 99.0,
                            "profile": "full", "params": "{'profile': 'full'}", "peak_mib": 1500.0}
    assert runs["demo"]["profile"] == "default"
    assert set(bench.chapter_runs(log, chapters=["01_x"])) == {"01_x"}  # no test demo
    assert bench.chapter_runs(tmp_path / "absent.tsv") == {}


def test_tiny_bench_runs_every_measurement_and_writes_json(tmp_path):
    log = tmp_path / "timings.tsv"
    log.write_text("2026-01-02T00:00:00+00:00\t03_peck\t12.5\t{'profile': 'smoke'}\t900\n")
    out = tmp_path / "bench.json"
    result = bench.run(bench.TINY, out=out, log=log, sizes_name="tiny", chapters=["03_peck"])
    saved = json.loads(out.read_text())
    assert set(saved["measurements"]) == set(bench.MEASUREMENTS)
    for rec in saved["measurements"].values():
        r = rec["ratio"]
        assert r["value"] > 0 and r["n_points"] == bench.TINY.repeats
        assert r["low"] is None or r["low"] <= r["value"] <= r["high"]
    md = bench.markdown(result)
    assert "| Cross-Hölder step ÷ plain step (per batch) |" in md
    assert "| 03_peck | smoke | 12.5 | 900 | 2026-01-02T00:00:00+00:00 |" in md


# ---- make gpu-check: the comparison, on synthetic outputs (no GPU needed) --------------------
def _nb(cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    for src, text in cells:
        c = nbformat.v4.new_code_cell(src)
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []
        nb.cells.append(c)
    return nb


def test_compare_text_within_and_beyond_tolerance():
    from analysis import gpucheck

    assert gpucheck.compare_text("acc 0.912, n = 82\n", "acc 0.915, n = 82\n") == []
    far = gpucheck.compare_text("acc 0.912\n", "acc 0.950\n")
    assert len(far) == 1 and "CPU 0.912 vs GPU 0.95" in far[0]
    assert gpucheck.compare_text("d 1.23e-05", "d 1.24e-05") == []  # relative, not absolute
    assert gpucheck.compare_text("d 1.23e-05", "d 1.40e-05") != []
    assert gpucheck.compare_text("nan inf", "nan inf") == []
    assert gpucheck.compare_text("x inf", "x 1e308") != []
    assert "text differs" in gpucheck.compare_text("reproduced 1", "refuted 1")[0]
    assert gpucheck.compare_text("a 1", "a 1.005", rel=1e-3) != []  # the tolerance is used


def test_split_numbers_keeps_names_with_digits():
    from analysis import gpucheck

    shape, nums = gpucheck.split_numbers("C-4 net lenet5: 0.5, -3, 1.2e+03 (12%)")
    assert nums == [4.0, 0.5, -3.0, 1200.0, 12.0]  # "C-4" gives 4 on both sides alike
    assert "lenet5" in shape


def test_compare_notebooks_matches_cells_by_source():
    from analysis import gpucheck

    chk = "# NBVAL_CHECK_OUTPUT\nprint(a)"
    ref = _nb([("a = 1", ""), (chk, "0.500\n"), ("# NBVAL_CHECK_OUTPUT\nprint(b)", "7\n")])
    run_ok = _nb([("# Parameters\ndevice = 'cuda'", ""), ("a = 1", ""), (chk, "0.501\n"),
                  ("# NBVAL_CHECK_OUTPUT\nprint(b)", "7\n")])
    assert gpucheck.compare_notebooks("09", ref, run_ok) == []
    run_bad = _nb([("a = 1", ""), (chk, "0.600\n")])
    diffs = gpucheck.compare_notebooks("09", ref, run_bad)
    assert [(d.cell, "0.6" in d.what or "not in the GPU run" in d.what) for d in diffs] == [
        (2, True), (3, True)]
    assert str(diffs[0]).startswith("09, code cell 2: number 1")


def test_gpu_check_skips_without_a_gpu(monkeypatch, capsys):
    import torch

    from analysis import gpucheck

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpucheck.main([]) == 0
    assert "gpu-check skipped: no CUDA device" in capsys.readouterr().out
