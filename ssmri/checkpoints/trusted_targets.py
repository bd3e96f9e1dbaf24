"""Which classes a config read from a file may name: ssmri's own, of the kind its place expects.

A checkpoint records its network, loss, physics, data and optimiser as Hydra configs, and
``eval.py`` instantiates the network and loss it finds there. ``weights_only=True`` keeps
pickled code out of a checkpoint, but not a string: ``_target_: builtins.open`` is plain data
that Hydra would call. So every config ssmri reads from a file it did not just write is checked
here first, before anything is built:

- each ``_target_`` must name a class of the kind its place expects (a top-level loss, a
  :class:`~ssmri.losses.base.ReconstructionLoss` in :mod:`ssmri.losses`; a network, an
  ``nn.Module`` in :mod:`ssmri.models`; ...), found by importing only the ssmri module the
  name starts with, never a module the file names outside ssmri (nor ``torch.optim``);
- Hydra's other special keys are refused (``_args_``, ``_recursive_``, ``_convert_``), and
  ``_partial_`` is allowed only where ssmri's configs use it (optimisers, schedulers);
- no string may hold a ``${...}`` interpolation: configs are recorded resolved, and a resolver
  such as ``oc.decode`` could turn a string into a new node after this check.
"""

import importlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from ssmri.checkpoints.legacy_targets import upgrade_target
from ssmri.errors import CheckpointError


@dataclass(frozen=True)
class Kind:
    """The classes a ``_target_`` may name in one place of a config.

    Attributes:
        what: how the message names the kind, e.g. ``"an ssmri loss class"``.
        package: the package the class must be defined in (``ssmri.losses``).
        base: dotted name of the class it must subclass (a trusted constant, never file data).
        partial: whether the node may carry ``_partial_: true`` (called later with more arguments).
    """

    what: str
    package: str
    base: str
    partial: bool = False


LOSS = Kind("an ssmri loss class", "ssmri.losses", "ssmri.losses.base.ReconstructionLoss")
NETWORK = Kind("an ssmri network (nn.Module in ssmri.models)", "ssmri.models", "torch.nn.Module")
TRANSFORM = Kind("an ssmri transform or splitter", "ssmri.transforms", "builtins.object")
OPERATOR = Kind("an ssmri acquisition operator", "ssmri.physics", "torch.nn.Module")
DATAMODULE = Kind("an ssmri data module", "ssmri.data", "ssmri.data.datamodule.MRIDataModule")
DATA_SOURCE = Kind("an ssmri data source", "ssmri.data", "ssmri.data.sources.DataSource")
LIT_MODULE = Kind("an ssmri LightningModule", "ssmri.lit", "ssmri.lit.module.ReconstructionModule")
OPTIMISER = Kind("a torch.optim optimiser", "torch.optim", "torch.optim.Optimizer", partial=True)
SCHEDULER = Kind(
    "a torch.optim.lr_scheduler scheduler",
    "torch.optim.lr_scheduler",
    "torch.optim.lr_scheduler.LRScheduler",
    partial=True,
)

#: group -> (the kind of its top-level node, the kinds its nested nodes may be). Derived from
#: every option of conf/{loss,model,physics,data,module,splitter,weighted_splitter}: losses nest
#: transforms, splitters and discriminators; MoDL nests its denoiser; the data module its source;
#: the LightningModule its optimisers and scheduler (tests/test_trusted_targets.py composes them).
GROUPS: dict[str, tuple[Kind, tuple[Kind, ...]]] = {
    "model": (NETWORK, (NETWORK,)),
    "loss": (LOSS, (TRANSFORM, NETWORK)),
    "physics": (OPERATOR, ()),
    "data": (DATAMODULE, (DATA_SOURCE,)),
    "module": (LIT_MODULE, (OPTIMISER, SCHEDULER)),
}

#: Hydra's special keys that ssmri's configs use; any other ``_name_`` key is refused.
_ALLOWED_SPECIAL = ("_target_", "_partial_")
_METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


class UntrustedTarget(Exception):
    """A node that names what it may not; carries the key path and the reason."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where} {reason}")
        self.where, self.reason = where, reason


def _resolve(dotted: str):
    """The object ``dotted`` names, importing only trusted constants' modules."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _names_kind(target: str, kind: Kind) -> bool:
    """Whether ``target`` is a public class of ``kind``; imports only modules inside ``kind.package``."""
    if target != kind.package and not target.startswith(kind.package + "."):
        return False  # checked on the string first: nothing outside the package is ever imported
    parts = target.split(".")
    if len(parts) < 2 or any(not part.isidentifier() or part.startswith("_") for part in parts):
        return False
    module_name, name = ".".join(parts[:-1]), parts[-1]
    if module_name != kind.package and not module_name.startswith(kind.package + "."):
        return False
    if not module_name.startswith("ssmri.") and module_name not in sys.modules:
        return False  # outside ssmri (torch.optim) only what is already loaded is looked at
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except ImportError:
        return False
    defined_in = getattr(found, "__module__", "") or ""
    return (
        isinstance(found, type)
        and issubclass(found, _resolve(kind.base))
        and (defined_in == kind.package or defined_in.startswith(kind.package + "."))
    )


def _check_node(node: dict, where: str, kinds: tuple[Kind, ...]) -> None:
    """Check one mapping's special keys and ``_target_`` against the ``kinds`` its place allows."""
    matched = None
    if "_target_" in node:
        target = node["_target_"]
        if not isinstance(target, str):
            raise UntrustedTarget(f"{where}._target_", f"is a {type(target).__name__}, not a class name")
        if not kinds:
            raise UntrustedTarget(f"{where}._target_={target!r}", "names a class where none belongs")
        # Checked as upgraded (what is instantiated), named as the file writes it.
        current = upgrade_target(target)
        matched = next((kind for kind in kinds if _names_kind(current, kind)), None)
        if matched is None:
            expected = " or ".join(kind.what for kind in kinds)
            today = f" (today {current!r})" if current != target else ""
            raise UntrustedTarget(f"{where}._target_={target!r}{today}", f"is not {expected}")
    for key in node:
        if not (isinstance(key, str) and len(key) > 2 and key.startswith("_") and key.endswith("_")):
            continue
        if key not in _ALLOWED_SPECIAL:
            raise UntrustedTarget(f"{where}.{key}", "is a Hydra instantiation key ssmri's configs never use")
        if key == "_partial_" and not (matched is not None and matched.partial):
            raise UntrustedTarget(f"{where}._partial_", "is allowed only on optimiser and scheduler nodes")


def _walk(node: Any, where: str, kinds: tuple[Kind, ...], nested: tuple[Kind, ...]) -> None:
    """Check ``node`` (allowed ``kinds``) and everything below it (allowed ``nested``), lists too."""
    if isinstance(node, dict):
        _check_node(node, where, kinds)
        for key, value in node.items():
            _walk(value, f"{where}.{key}", nested, nested)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, f"{where}[{index}]", nested, nested)
    elif isinstance(node, str) and "${" in node:
        raise UntrustedTarget(f"{where}={node!r}", "is an interpolation; recorded configs are resolved")


def target_keys(node: Any, where: str) -> list[str]:
    """The key path of every ``_target_`` in ``node`` (lists included), for files that hold none."""
    if isinstance(node, dict):
        return [
            *([f"{where}._target_"] if "_target_" in node else []),
            *(found for key, value in node.items() for found in target_keys(value, f"{where}.{key}")),
        ]
    if isinstance(node, (list, tuple)):
        return [
            found for index, value in enumerate(node) for found in target_keys(value, f"{where}[{index}]")
        ]
    return []


def check_group(group: str, node: Any, where: str) -> None:
    """Raise :class:`UntrustedTarget` unless ``node`` is a config of ``group`` naming only its kinds.

    A group ssmri does not know may name no class at all.
    """
    top, nested = GROUPS.get(group, (None, ()))
    if top is None:
        _walk(node, where, (), ())
        return
    if not isinstance(node, dict):
        raise UntrustedTarget(where, f"is a {type(node).__name__}, not a config mapping")
    if "_target_" not in node:
        raise UntrustedTarget(where, f"has no _target_; expected {top.what}")
    _walk(node, where, (top,), nested)


def check_recorded(config: Any, where: str) -> None:
    """Check a run's recorded config (``hyper_parameters.config``): each group with its kinds."""
    if not isinstance(config, dict):
        raise UntrustedTarget(where, f"is a {type(config).__name__}, not a mapping of config groups")
    for group, node in config.items():
        check_group(str(group), node, f"{where}.{group}")


def is_method_name(method: Any) -> bool:
    """Whether ``method`` can name a run's method (and its eval folder): no path, no markup."""
    return isinstance(method, str) and bool(_METHOD_NAME.fullmatch(method)) and ".." not in method


def check_hyper_parameters(hyper_parameters: Any, where: str = "hyper_parameters") -> None:
    """Raise :class:`UntrustedTarget` unless a checkpoint's hyper-parameters name only ssmri's classes.

    ``model`` and ``loss`` are checked as those groups, ``config`` group by group, ``seed``
    must be an integer and ``method`` a plain name; any other entry may name no class.
    Targets are checked as :func:`~ssmri.checkpoints.legacy_targets.upgrade_target` maps them,
    which is what evaluation instantiates, and named in a refusal as the file writes them.
    """
    if hyper_parameters is None:
        return
    if not isinstance(hyper_parameters, dict):
        raise UntrustedTarget(where, f"is a {type(hyper_parameters).__name__}, not a mapping")
    for key, value in hyper_parameters.items():
        path = f"{where}.{key}"
        if key in ("model", "loss"):
            check_group(key, value, path)
        elif key == "config":
            check_recorded(value, path)
        elif key == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UntrustedTarget(f"{path}={value!r}", "is not an integer")
        elif key == "method":
            if not is_method_name(value):
                raise UntrustedTarget(f"{path}={value!r}", "is not a method name")
        else:
            _walk(value, path, (), ())


def check_checkpoint(state: dict, path, key: str = "ckpt_path") -> None:
    """Raise :class:`CheckpointError` (one line, naming ``key``, the key path and the target)
    unless every config in checkpoint ``state`` names only ssmri classes of the expected kind."""
    try:
        check_hyper_parameters(state.get("hyper_parameters"))
    except UntrustedTarget as refused:
        raise CheckpointError(
            f"{key}={str(path)!r}: {refused.where} {refused.reason}; a checkpoint may only name "
            f"ssmri's own classes, so it is refused before anything is built (use a checkpoint "
            f"written by ssmri)"
        ) from None
