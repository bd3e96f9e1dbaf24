"""The benchmark's arithmetic and table on fake rows, and one real tiny measurement of our side."""

import math

import pytest
import torch

from benchmarks.__main__ import find_reference_python, output_path, parse_args
from benchmarks.harness import Workload, alternate
from benchmarks.ours import interleaved_step_ratio, multicoil_overrides, run
from benchmarks.rates import device_rates
from benchmarks.report import (
    compare_with_reference,
    convolution_breakdown,
    efficiency,
    matmul_rates,
    render,
    target_lines,
    unet_target_line,
    write_bench_results,
)
from benchmarks.timing import synchronizer, timed

RATES = {"matmul": 230e9, "onednn_conv1x1": 500e9, "rate": 500e9}
SETTINGS = {"size": 128, "steps": 5, "warmup": 2, "threads": 2}


def fake(side: str, step_seconds: float, gflop: float, peak: float, batch_size: int = 1, **extra) -> dict:
    return {
        "side": side,
        "batch_size": batch_size,
        "torch": "2.13.0+cpu",
        "step_seconds": step_seconds,
        "images_per_second": batch_size / step_seconds,
        "step_gflop": gflop,
        "inference_ms_per_image": 40.0,
        "peak_memory_gib": peak,
        "baseline_memory_gib": 0.5,
        "notes": "",
        **extra,
    }


def row(method: str, batch_size: int, ours: dict, theirs: dict | None) -> dict:
    return {
        "method": method,
        "batch_size": batch_size,
        "ssmri": ours,
        "deepinv": theirs,
        "ratios": compare_with_reference(ours, theirs),
    }


def test_efficiency_is_flops_over_time_times_rate():
    assert efficiency(fake("ssmri", 0.5, 100.0, 1.0), 250e9) == pytest.approx(0.8)
    ours, theirs = fake("ssmri", 0.2, 100.0, 1.0, 8), fake("deepinv", 0.4, 100.0, 2.0, 8)
    assert compare_with_reference(ours, theirs) == pytest.approx({"speedup": 2.0, "memory_ratio": 0.5})
    assert compare_with_reference(ours, None) == {} and compare_with_reference(ours, {"error": "boom"}) == {}


def test_convolution_breakdown_splits_the_step():
    # 0.2 s of a 0.25 s profiled step in convolutions doing 80 GFLOP at 500 GFLOP/s: 80 %, 80 %.
    measured = fake("ssmri", 0.25, 100.0, 1.0, conv_gflop=80.0, conv_seconds=0.2, profiled_step_seconds=0.25)
    assert convolution_breakdown(measured, 500e9) == pytest.approx((0.8, 0.8))
    assert convolution_breakdown(fake("ssmri", 0.25, 100.0, 1.0), 500e9) is None  # older rows
    text = render([row("sup", 1, measured, None)], RATES, SETTINGS, "skipped.")
    assert "| sup | 1 | 4.00 | 250 | 100.0 | 80 % | 80 % | 80 % | 40.0 | 1.00 |" in text


def test_matmul_rates_in_bfloat16():
    rates = matmul_rates(matmul_size=256, repeats=1, dtype=torch.bfloat16)
    assert rates["dtype"] == "bfloat16" and rates["rate"] == max(rates["matmul"], rates["onednn_conv1x1"]) > 0


def test_targets_say_met_not_met_and_not_measured():
    rows = [
        row("sup", 1, fake("ssmri", 0.25, 110.0, 1.0), fake("deepinv", 0.3, 110.0, 1.2)),  # 88 %
        row("mc", 1, fake("ssmri", 0.5, 110.0, 1.5), fake("deepinv", 0.4, 110.0, 1.2)),  # 44 %, slower
    ]
    lines = target_lines(rows, 500e9, reference_ran=True)
    assert lines[0].startswith("- efficiency >= 85 % at batch 1: **not met**: mc b=1 (44.0 %)")
    assert "not measured" in lines[1]  # no batch 8 rows
    assert "**not met**: mc b=1 (0.800x)" in lines[2]
    assert "**not met**: mc b=1 (1.250x)" in lines[4] and "sup" not in lines[4]
    skipped = target_lines(rows, 500e9, reference_ran=False)
    assert all("DeepInverse side skipped" in line for line in skipped[2:])


def test_table_with_and_without_the_reference(tmp_path):
    rows = [
        row("sup", 1, fake("ssmri", 0.25, 110.0, 1.0), fake("deepinv", 0.3, 110.0, 1.2, deepinv="0.5.0")),
        row(
            "diffeo_ei",
            8,
            fake("ssmri", 1.0, 400.0, 2.0, 8),
            fake("deepinv", 1.6, 400.0, 2.5, 8, notes="ssmri's transform"),
        ),
        row("uair", 1, {"error": "RuntimeError: boom"}, {"error": "ValueError: no"}),
    ]
    path = tmp_path / "bench" / "results.md"
    write_bench_results(path, rows, RATES, SETTINGS, "the reference venv.")
    text = path.read_text()
    assert "230 GFLOP/s" in text and "500 GFLOP/s" in text  # both rates, the higher used
    ours_cells = "| sup | 1 | 4.00 | 250 | 110.0 | 88 % | – | – | 40.0 | 1.00 |"
    assert ours_cells + " 3.33 | 110.0 | 40.0 | 1.20 | 1.20x | 0.83x |" in text
    assert "- diffeo_ei: ssmri's transform." in text
    assert "| uair | 1 | failed" in text
    assert "- throughput >= 1.4x DeepInverse at batch 8: **met**" in text
    assert (tmp_path / "bench" / "results.json").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json", "results.md"]

    alone = render([row("sup", 1, fake("ssmri", 0.25, 110.0, 1.0), None)], RATES, SETTINGS, "skipped.")
    assert "DI images/s" not in alone and "| sup | 1 | 4.00 |" in alone


def test_command_line_and_skipping_the_reference(monkeypatch):
    args = parse_args(["--methods", "sup,mo_ei", "--batch-sizes", "1,2", "--size", "32", "--device", "cpu"])
    assert args.methods == ["sup", "mo_ei"] and args.batch_sizes == [1, 2] and args.steps >= 1
    assert args.sizes == [32] and args.out == "bench/results.md"
    for bad in (["--methods", "nonsense"], ["--sizes", "128,x"], ["--sizes", "4"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    assert find_reference_python("none") == (None, "skipped (--reference-python none).")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert parse_args([]).device == "cpu"
    with pytest.raises(SystemExit):  # asked for CUDA on a machine without a GPU
        parse_args(["--device", "cuda"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = parse_args([])
    assert (on_gpu.device, on_gpu.sizes, on_gpu.batch_sizes) == ("cuda", [128, 320], [1, 8, 32])
    assert output_path(on_gpu.out, 320, on_gpu.sizes).name == "results-cuda-320.md"
    assert output_path("bench/results.md", 128, [128]).name == "results.md"


def test_timing_waits_for_the_device_before_and_after():
    events = []
    seconds = timed(lambda: events.append("call"), lambda: events.append("sync"))
    assert events == ["sync", "call", "sync"] and seconds >= 0
    assert synchronizer("cpu") is None and callable(synchronizer("cuda"))


def test_device_rates_on_the_cpu_name_the_one_measured():
    rates = device_rates("cpu", torch.float32, repeats=1)
    assert rates["device"] == "cpu" and rates["all"] == {"float32": rates["rate"]} and rates["rate"] > 0


def test_the_cuda_table_shows_the_gpu_the_unet_share_and_its_target():
    rates = {
        "dtype": "bfloat16",
        "device": "cuda",
        "matmul": 700e12,
        "onednn_conv1x1": 500e12,
        "rate": 700e12,
        "all": {"float32": 50e12, "tfloat32": 350e12, "bfloat16": 700e12},
    }
    settings = {**SETTINGS, "size": 320, "precision": "bf16-mixed", "device": "cuda"}
    # 32 images in 0.1 s; the U-Net 0.08 s of it doing 28,000 GFLOP: 80 % of the step, 50 % of 700 TFLOP/s.
    fast = fake(
        "ssmri",
        0.1,
        35000.0,
        30.0,
        32,
        device="NVIDIA H100",
        unet_seconds=0.08,
        unet_gflop=28000.0,
        unet_calls=3,
    )
    slow = fake("ssmri", 0.1, 35000.0, 30.0, 32, device="NVIDIA H100", unet_seconds=0.08, unet_gflop=14000.0)
    text = render([row("sup", 32, fast, None), row("mc", 32, slow, None)], rates, settings, "skipped.")
    assert "Machine: NVIDIA H100 (CUDA)" in text and "torch.cuda.max_memory_allocated" in text
    assert "tfloat32 350.0 TFLOP/s" in text and "torch.cuda.synchronize" in text
    assert "| U-Net share | U-Net efficiency |" in text
    assert "| sup | 32 | 320.00 | 100 | 35000.0 | 50 % | – | – | 80 % | 50 % | 40.0 | 30.00 |" in text
    assert "Targets (CUDA, bf16-mixed):" in text
    assert "batch 32, bf16-mixed: **not met**: mc (25.0 %)" in text
    assert "**met**" in unet_target_line([row("sup", 32, fast, None)], 700e12, settings)
    assert "not measured (this table: 128x128" in unet_target_line([], 700e12, {**settings, "size": 128})
    failed = render(
        [row("sup", 32, {"error": "OutOfMemoryError"}, None), row("mc", 32, slow, None)],
        rates,
        settings,
        "skipped.",
    )
    assert "| sup | 32 | failed |" + "  |" * 9 + "\n" in failed and "mc (25.0 %)" in failed


def test_a_tiny_real_measurement_in_process():
    result = run("sup", 2, size=32, steps=1, warmup=1, overrides=["model.denoiser.base_features=8"])
    for key in (
        "step_seconds",
        "images_per_second",
        "step_gflop",
        "inference_ms_per_image",
        "peak_memory_gib",
        "baseline_memory_gib",
    ):
        assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])
    assert result["side"] == "ssmri" and result["batch_size"] == 2 and len(result["step_seconds_all"]) == 1
    # The profiled step finds the convolutions: nearly all of the FLOPs, part of the time.
    assert 0.9 * result["step_gflop"] < result["conv_gflop"] <= result["step_gflop"]
    assert 0 < result["conv_seconds"] < result["profiled_step_seconds"]
    # The U-Net's three calls (one per MoDL iteration), replayed alone: part of the step, most FLOPs.
    assert result["unet_calls"] == 3 and 0 < result["unet_seconds"]
    assert 0.8 * result["step_gflop"] < result["unet_gflop"] <= result["step_gflop"]


def test_a_tiny_multicoil_measurement_splits_the_step_and_renders_its_section(tmp_path):
    overrides = [*multicoil_overrides(2), "model.denoiser.base_features=8", "model.cg_iterations=3"]
    ours = run("weighted_ssdu", 1, size=32, steps=1, warmup=0, overrides=overrides)
    wall = ours["profiled_step_seconds"]
    for key in ("unet_forward_seconds", "cg_forward_seconds", "fft_seconds", "conv_seconds"):
        assert 0 < ours[key] < wall, (key, ours[key], wall)
    single = fake("ssmri", ours["step_seconds"] / 2, 1.0, 1.0)
    rows = [row("weighted_ssdu", 1, single, None), {**row("weighted_ssdu", 1, ours, None), "coils": 2}]
    text = render(rows, RATES, {**SETTINGS, "coils": 2}, "skipped.")
    assert "## Multi-coil (2 birdcage coils" in text
    assert text.count("| weighted_ssdu | 1 |") == 2  # one row in each table
    assert "2.00x" in text and "single-coil one: **not met**" in text
    lonely = render(rows[1:], RATES, SETTINGS, "skipped.")
    assert "single-coil one: not measured" in lonely
    # Timed side by side in one process, the interleaved ratio is the one the target is judged on.
    side_by_side = {**ours, "interleaved_ratio": 1.25}
    rows[1] = {**row("weighted_ssdu", 1, side_by_side, None), "coils": 2}
    text = render(rows, RATES, {**SETTINGS, "coils": 2}, "skipped.")
    assert "| 1.25x | 2.00x |" in text and "single-coil one: **met**" in text
    assert "single-coil one: **met**" in render(rows[1:], RATES, SETTINGS, "skipped.")
    args = parse_args(["--multicoil-methods", "mo_ei", "--coils", "4"])
    assert args.multicoil_methods == ["mo_ei"] and args.coils == 4
    assert parse_args(["--multicoil-methods", ""]).multicoil_methods == []


def test_a_tiny_bfloat16_measurement_runs_the_convolutions_in_bfloat16(monkeypatch):
    seen = []
    convolution = torch.nn.functional.conv2d

    def recording_conv2d(input, *args, **kwargs):
        output = convolution(input, *args, **kwargs)
        seen.append(output.dtype)
        return output

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording_conv2d)
    result = run(
        "sup",
        1,
        size=32,
        steps=1,
        warmup=0,
        overrides=["model.denoiser.base_features=8"],
        precision="bf16-mixed",
    )
    assert result["precision"] == "bf16-mixed" and math.isfinite(result["images_per_second"])
    assert seen and set(seen) == {torch.bfloat16}
    with pytest.raises(ValueError, match="precision must be one of"):
        run("sup", 1, size=32, steps=1, warmup=0, precision="16-true")


# -- make scaling ----------------------------------------------------------------------------------
def scaling_row(method: str, batch_size: int, size: int, seconds: float, above: float) -> dict:
    return {
        "method": method,
        "batch_size": batch_size,
        "size": size,
        "step_seconds": seconds,
        "peak_memory_gib": 0.5 + above,
        "baseline_memory_gib": 0.5,
    }


def test_scaling_slopes_table_and_plot(tmp_path):
    from benchmarks.scaling_report import fits, slope, write_scaling

    assert slope([64**2, 128**2, 256**2], [0.1, 0.4, 1.6]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two or more image sizes"):
        slope([64**2], [0.1])
    rows = [
        scaling_row("sup", 1, 64, 0.1, 0.2),
        scaling_row("sup", 1, 128, 0.4, 0.8),
        scaling_row("mo_ei", 4, 64, 0.5, 1.0),
        scaling_row("mo_ei", 4, 128, 4.0, 2.0),
        {"method": "mo_ei", "batch_size": 4, "size": 256, "error": "MemoryError"},
    ]
    assert fits(rows)[("sup", 1)] == pytest.approx({"time": 1.0, "memory": 1.0})
    assert fits(rows)[("mo_ei", 4)] == pytest.approx({"time": 1.5, "memory": 0.5})
    loader = [
        {
            "size": 64,
            "num_workers": 2,
            "batch_size": 4,
            "slices_per_second": 400.0,
            "consumed_per_second": 8.0,
        }
    ]
    settings = {"machine": "test CPU", "threads": 2, "torch": "2.13", "steps": 3, "warmup": 1}
    write_scaling(tmp_path / "scaling.md", rows, loader, settings)
    text = (tmp_path / "scaling.md").read_text()
    assert "| sup | 1 | 128x128 | 16384 | 400 | 2.50 | 1.30 | 0.80 |" in text
    assert "| mo_ei | 4 | 256x256 | 65536 | failed: MemoryError |" in text
    assert "| mo_ei | 4 | 1.50 | 0.50 |" in text and "| 64x64 | 2 | 400 | 8.00 | 50x |" in text
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")


def test_scaling_arguments_and_a_tiny_step_and_loader_in_process(tmp_path):
    from benchmarks.scaling import loader_rate, measure_step
    from benchmarks.scaling import parse_args as scaling_args

    args = scaling_args([])
    assert (args.methods, args.sizes, args.batch_sizes, args.loader_workers) == (
        ["sup", "mo_ei"],
        [64, 128, 256, 320],
        [1, 4],
        [0, 2],
    )
    for bad in (["--sizes", "64"], ["--methods", "nonsense"], ["--batch-sizes", "0,1"], ["--sizes", "a,b"]):
        with pytest.raises(SystemExit):
            scaling_args(bad)
    narrow = ["model.denoiser.base_features=8"]
    row = measure_step("sup", 1, 16, steps=1, warmup=0, overrides=narrow)
    assert row["step_seconds"] > 0 and row["peak_memory_gib"] >= row["baseline_memory_gib"] > 0
    assert loader_rate(16, 2, 0, 6, tmp_path, narrow) > 0
    with pytest.raises(ValueError, match="nothing to time"):
        loader_rate(16, 4, 0, 4, tmp_path, narrow)


@pytest.mark.slow
def test_make_scaling_end_to_end_at_tiny_sizes(tmp_path):
    from benchmarks.scaling import main as scaling_main

    out = tmp_path / "scaling.md"
    scaling_main(
        [
            "--methods",
            "sup",
            "--sizes",
            "16,32",
            "--batch-sizes",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--loader-workers",
            "0",
            "--loader-slices",
            "4",
            "--override",
            "model.denoiser.base_features=8",
            "--out",
            str(out),
        ]
    )
    assert "| sup | 1 |" in out.read_text() and out.with_suffix(".png").is_file()


def test_the_interleaved_ratio_times_both_workloads_alternately(monkeypatch):
    import benchmarks.ours as ours

    order = []
    real = ours.build_workload

    def recording(method, batch_size, size, overrides=(), *rest):
        workload = real(method, batch_size, size, overrides, *rest)
        label = "multi" if overrides else "single"
        step = workload.step
        workload.step = lambda index: (order.append((label, index)), step(index))
        return workload

    monkeypatch.setattr(ours, "build_workload", recording)
    overrides = [*multicoil_overrides(2), "model.denoiser.base_features=8", "model.cg_iterations=3"]
    result = interleaved_step_ratio("weighted_ssdu", 1, 32, overrides, steps=2, warmup=1)
    assert order == [("multi", 0), ("single", 0), ("multi", 1), ("single", 1), ("multi", 2), ("single", 2)]
    assert result["interleaved_steps"] == 2
    ratio = result["interleaved_step_seconds"] / result["interleaved_baseline_step_seconds"]
    assert math.isfinite(result["interleaved_ratio"]) and result["interleaved_ratio"] == pytest.approx(ratio)
    with pytest.raises(ValueError, match="steps >= 1"):
        interleaved_step_ratio("weighted_ssdu", 1, 32, overrides, steps=0)


def test_alternate_takes_the_workloads_steps_in_turn_and_returns_their_medians(monkeypatch):
    import benchmarks.timing as timing

    order, clock = [], iter(range(100))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))
    workloads = {
        name: Workload(lambda index, name=name: order.append((name, index)), lambda: None)
        for name in ("first", "second")
    }
    medians = alternate(workloads, steps=3, warmup=1)
    assert order == [
        ("first", 0),
        ("second", 0),
        ("first", 1),
        ("second", 1),
        ("first", 2),
        ("second", 2),
        ("first", 3),
        ("second", 3),
    ]
    assert medians == {"first": 1.0, "second": 1.0}  # each timed call spans one clock tick
    with pytest.raises(ValueError, match="steps >= 1"):
        alternate(workloads, steps=0, warmup=0)
    order.clear()
    inferring = {
        name: Workload(lambda index: order.append("step"), lambda name=name: order.append(name))
        for name in ("first", "second")
    }
    alternate(inferring, steps=2, warmup=1, phase="infer")
    assert order == ["first", "second"] * 3  # inference only, in turn
    with pytest.raises(ValueError, match="phase must be"):
        alternate(inferring, steps=1, warmup=0, phase="train")


def test_side_by_side_report_judges_the_throughput_ratio(tmp_path):
    from benchmarks.side_by_side import parse_args as side_args
    from benchmarks.side_by_side import render as side_render

    settings = {
        "deepinv": "0.5.0",
        "machine": "AMD EPYC",
        "threads": 2,
        "torch": "2.14.1",
        "size": 128,
        "steps": 5,
        "warmup": 2,
    }
    rows = [
        {
            "method": "sup",
            "batch_size": 1,
            "ssmri_step_seconds": 2.0,
            "deepinv_step_seconds": 2.1,
            "throughput_ratio": 1.05,
        },
        {
            "method": "mc",
            "batch_size": 8,
            "ssmri_step_seconds": 2.0,
            "deepinv_step_seconds": 1.9,
            "throughput_ratio": 0.95,
        },
    ]
    text = side_render(rows, settings)
    assert "| sup | 1 | 2000 | 2100 | 1.05x | - | - | - |" in text
    assert "| mc | 8 | 2000 | 1900 | 0.95x | - | - | - |" in text
    assert "DeepInverse's: **not met**: mc b=8 (0.950x)" in text
    assert "DeepInverse's: **met**" in side_render(rows[:1], settings)
    assert "Noise2Inverse inference" not in text  # judged only where it was measured
    split = {
        "method": "noise2inverse",
        "batch_size": 1,
        "ssmri_step_seconds": 2.0,
        "deepinv_step_seconds": 2.0,
        "throughput_ratio": 1.0,
        "ssmri_inference_seconds": 3.0,
        "deepinv_inference_seconds": 2.4,
        "inference_ratio": 0.8,
    }
    text = side_render([split], settings)
    assert "| noise2inverse | 1 | 2000 | 2000 | 1.00x | 3000 | 2400 | 0.80x |" in text
    assert "sequential passes: **not met**: noise2inverse b=1 (0.800x)" in text
    args = side_args(["--methods", "sup,ssdu", "--batch-sizes", "1"])
    assert args.methods == ["sup", "ssdu"] and args.batch_sizes == [1]
    with pytest.raises(SystemExit):
        side_args(["--methods", ""])
    with pytest.raises(SystemExit):
        side_args(["--inference-runs", "-1"])


def test_side_by_side_without_deepinverse_says_where_to_run_it(monkeypatch):
    import builtins

    from benchmarks.side_by_side import main as side_main

    real_import = builtins.__import__

    def no_deepinv(name, *args, **kwargs):
        if name == "deepinv":
            raise ImportError("No module named 'deepinv'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_deepinv)
    with pytest.raises(SystemExit, match=r"\.venv-reference"):
        side_main(["--methods", "sup", "--batch-sizes", "1"])
