"""``make bench-side-by-side`` builds and steps both sides in one process (``make test-reference``)."""

import pytest

pytest.importorskip("deepinv")

from benchmarks.side_by_side import main, measure_pair  # noqa: E402

pytestmark = pytest.mark.reference


@pytest.mark.parametrize("method", ["sup", "diffeo_ei", "noise2inverse"])
def test_both_sides_step_and_infer_in_one_process(method):
    row = measure_pair(method, 2, 32, steps=1, warmup=0, inference_runs=1)
    assert row["ssmri_step_seconds"] > 0 and row["deepinv_step_seconds"] > 0
    assert row["throughput_ratio"] == pytest.approx(row["deepinv_step_seconds"] / row["ssmri_step_seconds"])
    assert row["ssmri_inference_seconds"] > 0 and row["deepinv_inference_seconds"] > 0
    ratio = row["deepinv_inference_seconds"] / row["ssmri_inference_seconds"]
    assert row["inference_ratio"] == pytest.approx(ratio)


def test_the_report_is_written(tmp_path):
    out = tmp_path / "side-by-side.md"
    main(
        [
            "--methods",
            "sup",
            "--batch-sizes",
            "1",
            "--size",
            "32",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--out",
            str(out),
        ]
    )
    assert "| sup | 1 |" in out.read_text()
    assert "NCHW" in out.read_text() or "NHWC" in out.read_text()  # the layout ssmri ran in
