from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from aebench.config import ParamsError, load_params, parse_params, variant_from_dict


def test_minimal_params_parse(raw_params):
    params = parse_params(raw_params)
    assert params.run.variants == ("ae", "vae")
    assert params.variant("dae").noise.kind == "masking"
    assert params.variant("ae").hidden == (512, 256)


def test_repository_params_are_valid():
    params = load_params("params.yaml")
    assert "iwae_protocol_vae" in params.run.variants  # the published likelihood protocol
    assert all(v in params.variants for v in params.run.variants)
    assert params.train.patience < params.train.max_epochs


def test_variant_round_trips_through_checkpoint_dict(raw_params):
    for params in (parse_params(raw_params), load_params("params.yaml")):
        for spec in params.variants.values():
            assert variant_from_dict(spec.to_dict()) == spec


def _set(raw, dotted, value):
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "run.datasets",
            ["imagenet"],
            r"run\.datasets: unknown dataset 'imagenet'; allowed: mnist5k",
        ),
        (
            "variants.ae.family",
            "gan",
            r"variants\.ae\.family: 'gan' is not allowed; allowed: ae, dae",
        ),
        (
            "variants.ae.arch",
            "resnet",
            r"variants\.ae\.arch: 'resnet' is not allowed; allowed: mlp",
        ),
        (
            "variants.dae.noise.kind",
            "blur",
            r"noise\.kind: 'blur' is not allowed; allowed: gaussian",
        ),
        (
            "variants.ae.latent_dim",
            0,
            r"variants\.ae\.latent_dim: 0 is not allowed; expected an integer >= 1",
        ),
        ("variants.ae.latent_dim", -3, r"latent_dim: -3 is not allowed"),
        ("train.max_epochs", 0, r"train\.max_epochs: 0 is not allowed; expected an integer >= 1"),
        ("train.patience", 0, r"train\.patience: 0 is not allowed; expected an integer >= 1"),
        ("train.min_delta", -0.1, r"train\.min_delta: -0.1 is not allowed; expected a number >= 0"),
        ("train.lr_plateau_factor", 1.5, r"train\.lr_plateau_factor: 1.5 is not allowed"),
        ("train.lr_plateau_patience", 10, r"train\.lr_plateau_patience: 10 is not allowed"),
        ("train.precision", "fp8", r"train\.precision: 'fp8' is not allowed; allowed: fp32, bf16"),
        ("train.threads", 0, r"train\.threads: 0 is not allowed; expected an integer >= 1"),
        ("train.lr", float("nan"), r"train\.lr: nan is not allowed; numbers must be finite"),
        ("train.lr", float("inf"), r"train\.lr: inf is not allowed; numbers must be finite"),
        (
            "evaluate.noise_grid.gaussian",
            [0.0, float("nan")],
            r"evaluate\.noise_grid\.gaussian\[1\]: nan is not allowed; numbers must be finite",
        ),
        (
            "variants.vae.beta",
            float("-inf"),
            r"variants\.vae\.beta: -inf is not allowed; numbers must be finite",
        ),
        ("train.batch_size", -1, r"train\.batch_size: -1 is not allowed"),
        ("train.lr", 0, r"train\.lr: 0.0 is not allowed; expected a number > 0"),
        (
            "variants.dae.noise.level",
            1.5,
            r"noise\.level: 1.5 is out of range for 'masking'; allowed: 0.0 to 1.0",
        ),
        ("variants.dvae.noise.level", -0.1, r"noise\.level: -0.1 is out of range for 'gaussian'"),
        (
            "run.variants",
            ["ae", "missing"],
            r"run\.variants: 'missing' is not defined under 'variants'; defined: ae, cae, dae",
        ),
        (
            "variants.ae.likelihood",
            "poisson",
            r"likelihood: 'poisson' is not allowed; allowed: bernoulli, gaussian",
        ),
        ("train.device", "tpu", r"train\.device: 'tpu' is not allowed; allowed: auto, cpu, cuda"),
        ("run.seeds", [], r"run\.seeds: expected a non-empty list"),
        ("variants.ae.latnet_dim", 3, r"variants\.ae: unknown key 'latnet_dim'; allowed: family"),
        ("variants.ae.beta", 2.0, r"variants\.ae\.beta: only vae, dvae have a KL weight"),
        ("variants.iwae.beta", 2.0, r"variants\.iwae\.beta: only vae, dvae have a KL weight"),
        ("variants.iwae.iw_samples", 0, r"variants\.iwae\.iw_samples: 0 is not allowed"),
        (
            "variants.vae.mmd_weight",
            1.0,
            r"variants\.vae\.mmd_weight: a hyperparameter of family 'wae', not of 'vae'",
        ),
        (
            "variants.rae.iw_samples",
            2,
            r"iw_samples: a hyperparameter of family 'iwae', not of 'rae' \('rae' takes: "
            r"code_penalty, decoder_decay\)",
        ),
        ("variants.sae.sparsity_target", 1.0, r"sparsity_target: 1.0 is not allowed"),
        ("variants.cae.contraction_weight", -1, r"contraction_weight: -1.0 is not allowed"),
        ("variants.sae.code_activation", "relu", r"sae.code_activation: .* allowed: sigmoid"),
        ("variants.vae.code_activation", "relu", r"vae.code_activation: .* allowed: linear"),
        ("variants.ae.code_activation", "tanh", r"allowed: linear, relu, sigmoid"),
        ("variants.wae.code_activation", "sigmoid", r"wae.code_activation: .* allowed: linear"),
        ("variants.ae.mmd_weight", 1.0, r"not of 'ae' \('ae' takes none\)"),
        ("variants.ae.obs_std", 0.2, r"ae\.obs_std: .* allowed only with likelihood: gaussian"),
        ("variants.ae.hidden", [0], r"variants\.ae\.hidden: \[0\] is not allowed"),
        ("variants.ae.decoder_hidden", "wide", r"variants\.ae\.decoder_hidden: 'wide' is not"),
        ("variants.ae.train", {"patience": 3}, r"ae\.train: unknown key 'patience'; allowed:"),
        ("variants.ae.train", {"batch_size": 0}, r"variants\.ae\.train\.batch_size: 0 is not"),
        # strict types: YAML's true is no integer, and 1e-3 (a string to YAML) no number
        ("train.batch_size", True, r"train\.batch_size: True is not allowed; expected an integer"),
        ("variants.ae.latent_dim", 4.0, r"latent_dim: 4.0 is not allowed; expected an integer"),
        ("train.lr", "1e-3", r"train\.lr: '1e-3' is not allowed; expected a number > 0"),
        ("variants.wae.mmd_weight", "10", r"variants\.wae\.mmd_weight: '10' is not allowed"),
        ("data.test_fraction", 0.95, r"data: val_fraction \+ test_fraction must be below 1"),
        ("evaluator.epochs", 0, r"evaluator\.epochs: 0 is not allowed; 'auto' or an integer"),
        ("evaluate.noise_grid", {"blur": [0, 1]}, r"noise_grid: unknown key 'blur'; allowed: gaus"),
        ("run.seeds", [0, 0], r"run\.seeds: duplicate entries in \[0, 0\]"),
        ("variants.ae.binarize", "dynamic", None),  # allowed: the likelihood is bernoulli
        # datasets.<name>: a dataset's own split keys (a built-in's), or its files (any other)
        (
            "datasets.digits.val_images",
            100,
            r"datasets\.digits\.val_images: only a dataset with an official test split takes a "
            r"count of validation images; allowed for: mnist, fashion_mnist, kmnist, cifar10",
        ),
        (
            "datasets.mnist.val_image",
            10000,
            r"datasets\.mnist: unknown key 'val_image'; allowed: .*test_fraction, val_images",
        ),
        (
            "datasets.mnist.test_fraction",
            0.1,
            r"datasets\.mnist\.test_fraction: mnist keeps its official test split; allowed: "
            r"split_seed, val_fraction, val_images",
        ),
        ("datasets.mnist", {"val_images": 10, "val_fraction": 0.1}, r"mnist\.val_images: give"),
        ("datasets.mnist.val_images", 0, r"mnist\.val_images: 0 is not allowed; expected an int"),
        ("datasets.mnist.path", "x.npz", r"datasets\.mnist\.path: 'mnist' is a built-in dataset"),
        ("datasets.mine.val_fraction", 0.2, r"datasets\.mine: missing required key 'format'"),
        ("datasets.digits.test_fraction", 0.9, r"datasets\.digits: val_fraction \+ test_fraction"),
        ("datasets.mnist.val_images", 10000, None),
        ("datasets.digits.split_seed", 3, None),
    ],
)
def test_bad_param_is_named_with_what_is_allowed(raw_params, key, value, expected):
    _set(raw_params, key, value)
    if expected is None:
        parse_params(raw_params)
        return
    with pytest.raises(ParamsError, match=expected):
        parse_params(raw_params)


def test_integers_given_for_numbers_resolve_to_floats(raw_params):
    """VariantSpec.to_dict() is stored in every checkpoint: `mmd_weight: 10` must give 10.0,
    the value (and bytes) it gave before the schema was declared with pydantic."""
    raw_params["variants"]["wae"]["mmd_weight"] = 10
    raw_params["variants"]["vae"]["beta"] = 2
    raw_params["variants"]["dae"]["noise"]["level"] = 0
    raw_params["train"]["lr"] = 1
    params = parse_params(raw_params)
    values = (
        params.variant("wae").to_dict()["mmd_weight"],
        params.variant("vae").beta,
        params.variant("dae").noise.level,
        params.train.lr,
    )
    assert values == (10.0, 2.0, 0.0, 1.0)
    assert all(type(value) is float for value in values)
    assert params.variant("ae").beta is None and params.variant("vae").code_activation is None


def test_denoising_family_needs_noise(raw_params):
    del raw_params["variants"]["dae"]["noise"]
    with pytest.raises(ParamsError, match=r"variants\.dae\.noise: family 'dae' needs a corruption"):
        parse_params(raw_params)


def test_load_params_names_the_file(tmp_path, raw_params):
    raw_params["train"]["max_epochs"] = "many"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw_params))
    with pytest.raises(
        ParamsError, match=r"params\.yaml: train\.max_epochs: 'many' is not allowed"
    ):
        load_params(path)


def test_conv_layers_must_fit_the_run_datasets(raw_params):
    raw_params["variants"]["ae"].update(arch="conv", hidden=[16, 32, 64, 128])
    with pytest.raises(
        ParamsError,
        match=r"variants\.ae\.hidden: 4 conv layers need image sides "
        r"divisible by 16, but digits images are 8×8; allowed: at most 3 layers",
    ):
        parse_params(raw_params)


def test_variant_names_become_paths_so_they_are_restricted(raw_params):
    raw_params["variants"]["a/b"] = {"family": "ae", "latent_dim": 2}
    with pytest.raises(ParamsError, match=r"variants: name 'a/b' is not allowed; letters, digits"):
        parse_params(raw_params)


@pytest.mark.parametrize("samplers", [["prior"], ["gmm", "gmm"], ["gmm", "langevin"]])
def test_samplers_must_be_distinct_known_and_include_gmm(raw_params, samplers):
    raw_params["evaluate"] = {"samplers": samplers}
    with pytest.raises(ParamsError, match=r"evaluate\.samplers: .* includes gmm"):
        parse_params(raw_params)


@pytest.mark.parametrize(("value", "expected"), [("auto", None), (7, 7)])
def test_evaluator_epochs_auto_or_integer(raw_params, value, expected):
    raw_params["evaluator"] = {"epochs": value}
    assert parse_params(raw_params).evaluator.epochs == expected
    raw_params["evaluator"] = {"epochs": "many"}
    with pytest.raises(ParamsError, match=r"evaluator\.epochs: 'many' is not allowed; 'auto' or"):
        parse_params(raw_params)


def test_noise_grid_levels_must_increase_within_range(raw_params):
    raw_params["evaluate"] = {"noise_grid": {"masking": [0.0, 0.5, 0.4]}}
    with pytest.raises(ParamsError, match=r"evaluate\.noise_grid\.masking: .* must be increasing"):
        parse_params(raw_params)


def test_yaml_nan_is_refused_with_the_key_named(tmp_path, raw_params):
    """`.nan` in YAML is a float that every range check would let through (NaN compares false)."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw_params).replace("lr: 0.001", "lr: .nan"))
    with pytest.raises(ParamsError, match=r"params\.yaml: train\.lr: nan is not allowed"):
        load_params(path)


def test_conv_needs_hidden_layers_and_mirrors_its_decoder(raw_params):
    raw_params["variants"]["ae"].update(arch="conv", hidden=[])
    with pytest.raises(ParamsError, match=r"ae\.hidden: \[\] is not allowed; a non-empty"):
        parse_params(raw_params)
    raw_params["variants"]["ae"].update(hidden=[8], decoder_hidden=[8])
    with pytest.raises(ParamsError, match=r"decoder_hidden: .* allowed only with arch: mlp"):
        parse_params(raw_params)


def test_family_defaults_and_variant_training_overrides(raw_params):
    raw_params["variants"]["ae"]["train"] = {"batch_size": 256, "max_epochs": 7}
    params = parse_params(raw_params)
    assert params.variant("rae").param("decoder_decay") == 1e-3
    assert params.variant("cae").code_activation == "sigmoid"
    assert params.variant("ae").code_activation == "linear"
    own = params.train_for("ae")
    assert (own.batch_size, own.max_epochs, own.lr) == (256, 7, params.train.lr)
    assert params.train_for("vae") == params.train


def test_an_external_family_is_validated_by_its_own_params_and_can_be_swept(raw_params):
    """`family: module:Class` (examples/learned_prior.py, found from the working directory):
    its own keys get defaults and ranges from its Params, and a study may sweep them."""
    raw_params["variants"]["mine"] = {
        "family": "examples.learned_prior:LearnedPriorVAE",
        "latent_dim": 4,
    }
    raw_params["studies"] = {
        "components": {"variants": ["mine"], "key": "prior_components", "values": [2, 8]}
    }
    params = parse_params(raw_params)
    assert params.variant("mine").param("prior_components") == 4  # its default
    assert params.variant("mine").beta == 1.0  # a VAE: it takes the KL weight
    # its own value (4) is a point too: the base runs in the studies, being outside run.variants
    assert {spec.param("prior_components") for spec in params.study_points.values()} == {2, 4, 8}
    raw_params["variants"]["mine"]["prior_components"] = 0
    with pytest.raises(
        ParamsError, match=r"mine\.prior_components: 0 is not allowed; expected an integer >= 1"
    ):
        parse_params(raw_params)
    raw_params["variants"]["mine"] = {"family": "examples.nowhere:Flow", "latent_dim": 4}
    with pytest.raises(ParamsError, match=r"variants\.mine\.family: .*'examples\.nowhere:Flow'"):
        parse_params(raw_params)


def test_a_datasets_own_split_keys_override_data_for_it_alone(raw_params):
    raw_params["datasets"] = {
        "mnist": {"val_images": 10000},
        "digits": {"split_seed": 7},
        "mine": {"format": "npz", "path": "mine.npz", "val_fraction": 0.3},
    }
    params = parse_params(raw_params)
    assert params.datasets == {"mine": {"format": "npz", "path": "mine.npz"}}  # files only
    assert params.data_for("mnist") == replace(params.data, val_images=10000)
    assert params.data_for("digits") == replace(params.data, split_seed=7)
    assert params.data_for("mine").val_fraction == 0.3
    assert params.data_for("kmnist") == params.data


def test_mnist5k_keeps_its_resolved_split_and_mnist_resolves_its_count():
    """The settings file of mnist5k (the default run's dataset) must keep its bytes, so that no
    stage of the default run re-runs; mnist's holds the count in place of the fraction."""
    from aebench import settings
    from aebench.resolve import _data

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["datasets"] = {**(raw.get("datasets") or {}), "mnist": {"val_images": 10000}}
    for params in (load_params("params.yaml"), parse_params(raw)):
        assert settings.render(_data(params, "mnist5k")) == (
            '{\n  "split": {\n    "split_seed": 0,\n    "test_fraction": 0.2,\n'
            '    "val_fraction": 0.1\n  }\n}\n'
        )
    resolved = _data(parse_params(raw), "mnist")
    assert resolved == {"split": {"split_seed": 0, "download_timeout_s": 10.0, "val_images": 10000}}
