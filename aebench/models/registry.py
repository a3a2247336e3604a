"""The one list of families: the built-in ones, and any ``module:Class`` a variant names.

A family is found by its ``family`` name (built-in) or imported from its path, looked up first in
the directory of params.yaml (the working directory of every stage), then among the installed
packages. What a family declares (params, samplers, posterior, denoising) is checked here, once,
so a bad declaration is refused before any stage starts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import sys
from pathlib import Path

from aebench.errors import ParamsError
from aebench.models.ae import Autoencoder, DenoisingAutoencoder, FamilyParams
from aebench.models.cae import ContractiveAutoencoder
from aebench.models.iwae import ImportanceWeightedAutoencoder
from aebench.models.rae import RegularizedAutoencoder
from aebench.models.sae import SparseAutoencoder
from aebench.models.vae import DenoisingVariationalAutoencoder, VariationalAutoencoder
from aebench.models.wae import WassersteinAutoencoder
from aebench.spec import CORE_VARIANT_KEYS, SAMPLERS

BUILT_IN: tuple[type[Autoencoder], ...] = (
    Autoencoder,
    DenoisingAutoencoder,
    VariationalAutoencoder,
    DenoisingVariationalAutoencoder,
    ImportanceWeightedAutoencoder,
    WassersteinAutoencoder,
    RegularizedAutoencoder,
    ContractiveAutoencoder,
    SparseAutoencoder,
)
BY_NAME: dict[str, type[Autoencoder]] = {cls.family: cls for cls in BUILT_IN}
assert len(BY_NAME) == len(BUILT_IN), "two built-in families share a name"


class FamilyError(ParamsError):
    """A family that cannot be imported or whose declaration breaks the interface."""


def is_import_path(name: str) -> bool:
    """``module.sub:Class`` names an external family; a bare name a built-in one."""
    return ":" in name


def family_class(name: str, search: Path | None = None) -> type[Autoencoder]:
    """The class of family ``name``: built-in, or imported from ``module:Class`` with
    ``search`` (default: the working directory, where params.yaml is) ahead on the path."""
    if name in BY_NAME:
        return BY_NAME[name]
    if not is_import_path(name):
        raise FamilyError(
            f"family {name!r} is not a built-in family nor an import path 'module:Class'; "
            f"built-in: {', '.join(BY_NAME)}"
        )
    module_name, _, class_name = name.partition(":")
    if not module_name or not class_name.isidentifier():
        raise FamilyError(f"family {name!r}: an import path is 'module.sub:Class'")
    folder = str((search or Path.cwd()).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise FamilyError(
            f"family {name!r}: cannot import module {module_name!r} ({err}); it must be a "
            f"module file or package under {folder} or an installed package"
        ) from err
    except Exception as err:  # the module's own code failed: say where, not a traceback
        raise FamilyError(
            f"family {name!r}: importing module {module_name!r} failed: {type(err).__name__}: {err}"
        ) from err
    cls = getattr(module, class_name, None)
    if cls is None:
        raise FamilyError(f"family {name!r}: module {module_name!r} has no {class_name!r}")
    check_declaration(cls, name)
    return cls


def check_declaration(cls: object, name: str) -> None:
    """Refuse a class that is not a family or declares what it cannot do, naming ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Autoencoder)):
        raise FamilyError(
            f"family {name!r} is not a subclass of aebench.Autoencoder (or of "
            "aebench.VariationalAutoencoder)"
        )
    params = cls.Params
    if not (isinstance(params, type) and issubclass(params, FamilyParams)):
        raise FamilyError(f"family {name!r}: Params must subclass aebench.FamilyParams")
    taken = [key for key in params.model_fields if key in CORE_VARIANT_KEYS]
    if taken:
        raise FamilyError(
            f"family {name!r}: Params declares {taken[0]!r}, a key every variant has; name the "
            f"family's own keys otherwise (taken: {', '.join(CORE_VARIANT_KEYS)})"
        )
    unknown = [s for s in cls.samplers if s not in SAMPLERS]
    if unknown or "gmm" not in cls.samplers:
        raise FamilyError(
            f"family {name!r} declares samplers {list(cls.samplers)}; allowed: entries of "
            f"{', '.join(SAMPLERS)}, gmm among them (every family has a code to fit it on)"
        )
    if "chain" in cls.samplers and not cls.denoises:
        raise FamilyError(f"family {name!r}: the chain sampler needs denoises = True")
    if cls.has_posterior and not issubclass(cls, VariationalAutoencoder):
        raise FamilyError(
            f"family {name!r} declares has_posterior but does not subclass "
            "aebench.VariationalAutoencoder (which defines q(z | x), p(z) and their ratio)"
        )


def applicable_samplers(family: str, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The requested samplers ``family`` declares, in the requested order."""
    declared = family_class(family).samplers
    return tuple(name for name in requested if name in declared)


def family_source(name: str) -> dict[str, str]:
    """What identifies an external family's code, written into the settings of every stage
    that loads it (so editing it re-runs those stages) and into the report header: for code
    under params.yaml's folder, a sha256 over its module's files (the whole top-level package
    when it is one, so a helper module counts too); for an installed distribution, its
    version. Empty for a built-in family."""
    if not is_import_path(name):
        return {}
    cls = family_class(name)
    top = sys.modules[cls.__module__.split(".")[0]]
    files = _source_files(top)
    here = Path.cwd().resolve()
    if all(path.is_relative_to(here) for path in files):
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(here)).encode() + b"\0" + path.read_bytes())
        shown = Path(sys.modules[cls.__module__].__file__ or "").resolve().relative_to(here)
        return {"file": str(shown), "sha256": digest.hexdigest()}
    distributions = importlib.metadata.packages_distributions().get(top.__name__, [])
    if not distributions:
        raise FamilyError(
            f"family {name!r}: its code is neither under {here} nor an installed distribution, "
            "so no version identifies it; put the module beside params.yaml or install it"
        )
    version = importlib.metadata.version(distributions[0])
    return {"package": distributions[0], "version": version}


def _source_files(module: object) -> list[Path]:
    """A module's file, or every .py file of a package, sorted."""
    paths = getattr(module, "__path__", None)
    if paths is None:
        return [Path(module.__file__).resolve()]
    found = {p.resolve() for folder in paths for p in Path(folder).rglob("*.py")}
    return sorted(p for p in found if "__pycache__" not in p.parts)
