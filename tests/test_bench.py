"""The benchmark's own arithmetic and its reference loop (the timings themselves are printed by
`aebench bench`, never asserted)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from aebench.bench import flops_per_sample, markdown_table, run_bench, textbook_train
from aebench.config import parse_params
from aebench.models import build_model


def test_flops_count_the_linear_layers_of_a_training_step(raw_params):
    raw_params["variants"]["ae"]["hidden"] = [10]
    model = build_model(parse_params(raw_params).variant("ae"), (1, 2, 3))
    # encoder 6->10->4, decoder 4->10->6: multiply-adds per sample, ×2 FLOPs, ×3 fwd + bwd
    macs = 6 * 10 + 10 * 4 + 4 * 10 + 10 * 6
    assert flops_per_sample(model) == 6 * macs


def test_flops_count_conv_positions(raw_params):
    raw_params["variants"]["ae"].update(arch="conv", hidden=[2])
    model = build_model(parse_params(raw_params).variant("ae"), (1, 4, 4))
    # conv 1->2, k4 s2 p1: 2×2 outputs × 32 weights; linear 8->4; linear 4->8;
    # transposed conv 2->1 on a 2×2 input: 4 positions × 32 weights
    macs = 4 * 32 + 8 * 4 + 4 * 8 + 4 * 32
    assert flops_per_sample(model) == 6 * macs


def test_textbook_loop_learns(raw_params):
    model = build_model(parse_params(raw_params).variant("ae"), (1, 8, 8))
    torch.manual_seed(0)
    pattern = (torch.rand(1, 1, 8, 8) > 0.5).float()  # one learnable image, lightly perturbed
    data = (pattern + 0.05 * torch.rand(96, 1, 8, 8)).clamp(0, 1)
    before = model.loss_terms(data[64:], torch.Generator()).get("loss").item()
    after = textbook_train(model, data[:64], data[64:], epochs=5, batch_size=16, lr=1e-2, seed=0)
    assert after < before


def test_bench_runs_end_to_end_and_renders_its_table(raw_params):
    params = parse_params(raw_params)
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, threads=1))
    result = run_bench(params, ["ae"], epochs=1, repeats=1, dataset="digits")
    row = result["training"][0]
    assert row["variant"] == "ae" and row["ours_samples_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["ours_samples_per_s"] / row["textbook_samples_per_s"])
    assert 0 < row["share_of_peak"] < 1.5
    assert (
        result["evaluation_seconds"]["ae"]["total"] >= result["evaluation_seconds"]["ae"]["samples"]
    )
    table = markdown_table(result)
    assert "| ae |" in table and f"{row['ratio']:.2f}×" in table


def test_a_gpu_run_is_headed_by_the_gpu_not_the_cpu_settings():
    """On a GPU the CPU kernel path and thread count do not bear on the figures (bench/*.json
    committed from an H200 would otherwise read 'AVX512, 1 threads')."""
    committed = json.loads((Path(__file__).parents[1] / "bench" / "nvidia-h200.json").read_text())
    header = markdown_table(committed).splitlines()[0]
    assert header.startswith("NVIDIA H200 (CUDA, torch ") and "threads" not in header
    cpu = {**committed, "device": "Some CPU", "device_type": "cpu"}
    assert markdown_table(cpu).startswith("Some CPU (AVX512, 1 threads, torch ")
