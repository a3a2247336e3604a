"""The report's "Variants" section: what each compared model is, read from params.yaml, so a
reader can tell an IWAE from a VAE row without opening the configuration."""

from __future__ import annotations

from collections.abc import Sequence

from aebench.models.registry import family_class
from aebench.report.document import BulletList, Cell, Heading, Paragraph, Table
from aebench.spec import DEFAULT_HIDDEN, VariantSpec


def _number(value: object) -> str:
    """A family's own setting as the table shows it: numbers compactly, anything else as is."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _widths(values: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


def architecture(spec: VariantSpec) -> str:
    """``mlp [512, 256] / [256, 512]``: the encoder's and the decoder's hidden widths."""
    text = f"{spec.arch} {_widths(spec.hidden)}"
    if spec.arch == "mlp" and spec.decoder_widths != tuple(reversed(spec.hidden)):
        text += f" / {_widths(spec.decoder_widths)}"
    return text


def code(spec: VariantSpec) -> str:
    if family_class(spec.family).has_posterior:
        return f"{spec.latent_dim} Gaussian"
    return f"{spec.latent_dim} {spec.code_activation}"


def settings(spec: VariantSpec) -> str:
    """The variant's objective-shaping settings: noise, β, the family's own hyperparameters,
    the decoder likelihood and the training data's binarisation, and any training override."""
    parts = []
    if spec.noise is not None:
        parts.append(f"noise {spec.noise.kind} {spec.noise.level:g}")
    if spec.beta is not None:
        parts.append(f"β {spec.beta:g}")
    parts += [f"{key} {_number(value)}" for key, value in spec.family_params]
    likelihood = spec.likelihood
    if likelihood == "gaussian":
        likelihood += f" (σ {spec.obs_std:g})"
    parts.append(f"{likelihood} decoder")
    if spec.binarize != "none":
        parts.append(f"{spec.binarize} binarisation")
    if spec.batch_size is not None:
        parts.append(f"batch {spec.batch_size}")
    if spec.max_epochs is not None:
        parts.append(f"≤ {spec.max_epochs} epochs")
    return ", ".join(parts)


def variant_blocks(specs: Sequence[VariantSpec]) -> list:
    """A table of the compared variants, then what each family present is."""
    rows = tuple(
        tuple(Cell(text) for text in (s.name, s.family, architecture(s), code(s), settings(s)))
        for s in specs
    )
    families = dict.fromkeys(s.family for s in specs)
    meanings = tuple(f"**{family}**: {family_class(family).summary}." for family in families)
    defaults = ", ".join(f"{arch} {_widths(w)}" for arch, w in DEFAULT_HIDDEN.items())
    return [
        Heading(2, "Variants"),
        Paragraph(
            "What each row below is (params.yaml `variants`). Architecture: the encoder's "
            f"hidden widths (default {defaults}), then the decoder's where they do not mirror "
            "them; code: its width and last activation."
        ),
        Table(("variant", "family", "architecture", "code", "settings"), rows),
        BulletList(meanings),
    ]
