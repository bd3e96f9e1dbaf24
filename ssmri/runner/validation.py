"""Values that cannot be right are refused where they enter, each error naming its config key.

:func:`check_config` runs on the composed config before anything is built: every number a
constructor declares ``int`` or ``float`` must be one (``data.image_size=32.5`` and
``physics.noise_std=abc`` are refused), no number anywhere may be NaN or infinite, the run's
``seed`` is an integer, Lightning's epoch and step limits are at least -1, and each torch
optimiser is built once on a dummy parameter so that torch's own range checks (``lr >= 0``,
betas in [0, 1), ...) fail here, naming the key, rather than after the data is simulated.
What data must satisfy as it is read is checked in :mod:`ssmri.data.checks`.
"""

import inspect
import math
import types
import typing
from collections.abc import Iterator

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from ssmri.errors import ConfigError

_NUMBERS = {int: "an integer", float: "a number"}
# The parts of a run's config that hold its numbers (loggers and paths hold none).
_GROUPS = ("seed", "data", "physics", "model", "loss", "module", "trainer")
# Lightning's limits where -1 means "none" and anything below it is an error deep in its loops.
_LIMITS = ("trainer.max_epochs", "trainer.max_steps")


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the first key whose value cannot be right."""
    values = {
        group: OmegaConf.to_container(cfg[group], resolve=True)
        if isinstance(cfg[group], DictConfig)
        else cfg[group]
        for group in _GROUPS
        if group in cfg
    }
    seed = values.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}; e.g. seed=0")
    targets = []
    for key, node in _nodes(values, ""):
        if isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"{key}={node} is not a finite number; give a finite value")
        if isinstance(node, dict) and isinstance(node.get("_target_"), str):
            _check_arguments(key, node)
            targets.append((key, node))
        if key in _LIMITS and isinstance(node, int) and node < -1:
            raise ConfigError(f"{key}={node} must be at least 0, or -1 for no limit; e.g. {key}=4")
    for key, node in targets:  # once every value is known to be a finite number
        _check_optimizer(key, node)


def _nodes(node, key: str) -> Iterator[tuple[str, object]]:
    """Every (dotted key, value) below ``node``, parents before their children."""
    yield key, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, child in items:
        yield from _nodes(child, f"{key}.{name}" if key else str(name))


def _check_arguments(key: str, node: dict) -> None:
    """Each argument that the target declares ``int`` or ``float`` must hold one."""
    try:
        target = get_object(node["_target_"])
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # noqa: BLE001 - instantiation reports a target that does not import
        return
    for name, value in node.items():
        wanted = _number_type(hints.get(name))
        if wanted is None or (value is None and _optional(hints[name])):
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (wanted is int and not isinstance(value, int)):
            raise ConfigError(
                f"{key}.{name} must be {_NUMBERS[wanted]}, got {value!r}"
                + ("; e.g. a whole number of pixels or samples" if wanted is int else "")
            )


def _number_type(hint) -> type | None:
    """``int`` or ``float`` for hints ``int``, ``float``, ``X | None`` and torch's ``float | Tensor``
    (a config can only give the number); None for anything else."""
    if hint in (int, float):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(hint) if m is not type(None) and m is not Tensor]
        if len(members) == 1 and members[0] in (int, float):
            return members[0]
    return None


def _check_optimizer(key: str, node: dict) -> None:
    """A (partial) torch optimiser built on one dummy parameter: torch refuses a negative
    learning rate, betas outside [0, 1) and the like, and the error is given the config key."""
    try:
        target = get_object(node["_target_"])
    except Exception:  # noqa: BLE001 - instantiation reports a target that does not import
        return
    if not (inspect.isclass(target) and issubclass(target, torch.optim.Optimizer)):
        return
    arguments = {name: value for name, value in node.items() if not name.startswith("_")}
    lr = arguments.get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr < 0:
        raise ConfigError(f"{key}.lr={lr} is negative; give a learning rate > 0, e.g. {key}.lr=1e-3")
    try:
        target([torch.zeros(1, requires_grad=True)], **arguments)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"{key} ({node['_target_']}) refuses its arguments {arguments}: {error}; fix that value"
        ) from None


def _optional(hint) -> bool:
    return type(None) in typing.get_args(hint)
