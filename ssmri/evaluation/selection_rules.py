"""Which weights a run tests: the checkpoint-selection rules, and what each one reads.

- ``val_loss``: the method's own objective on the validation measurements (lowest wins), with
  the loss's randomness fixed per validation image so that epochs are compared on the same
  draws. A self-supervised method reads no ground truth to choose its weights.
- ``last``: the weights at the end of training (a fixed budget).
- ``val_psnr``: highest validation PSNR. It needs ground truth, which a self-supervised method
  does not have: an **oracle**, labelled so wherever its numbers appear.

A method without a meaningful objective to select on (``ReconstructionLoss.selectable =
False``: the adversarial methods, whose generator objective measures how well the critic is
fooled, not the reconstruction) falls back from ``val_loss`` to ``last``, and says so.
"""

from dataclasses import dataclass

#: rule -> (the logged value it monitors, "min" or "max"); ``last`` monitors nothing.
RULES = {"val_loss": ("val/loss", "min"), "last": (None, None), "val_psnr": ("val/psnr", "max")}
ORACLE_RULES = ("val_psnr",)


def label(rule: str) -> str:
    """The rule's name as tables and logs print it: ``val_psnr (oracle)``."""
    return f"{rule} (oracle)" if rule in ORACLE_RULES else rule


@dataclass(frozen=True)
class Choice:
    """What one rule does in one run.

    Attributes:
        rule: the rule asked for.
        used: the rule actually applied (``last`` where ``rule`` cannot apply).
        oracle: the choice reads validation ground truth although the method is self-supervised.
        reads_ground_truth: ground truth is read to choose the weights (an oracle, or ``sup``).
        note: why ``used`` differs from ``rule``; empty when it does not.
    """

    rule: str
    used: str
    oracle: bool
    reads_ground_truth: bool
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "used": self.used,
            "label": label(self.used),
            "oracle": self.oracle,
            "reads_ground_truth": self.reads_ground_truth,
            "note": self.note,
        }


class Selection:
    """The selection rule of a run, and whether every rule's pick is tested too.

    Args:
        rule: ``val_loss``, ``last`` or ``val_psnr`` (oracle); its pick is ``checkpoints/best.ckpt``
            and its numbers are ``test/*`` in ``metrics.json``.
        test_all: also keep and test the pick of every other rule (``rules`` in ``metrics.json``),
            so one sweep gives every rule's numbers.
    """

    def __init__(self, rule: str = "val_loss", test_all: bool = True):
        if rule not in RULES:
            raise ValueError(
                f"selection.rule={rule!r} is not a selection rule; choose one of {list(RULES)} "
                f"(e.g. selection=val_loss)"
            )
        self.rule = rule
        self.test_all = bool(test_all)

    def choose(self, rule: str, loss, val_ground_truth: bool) -> Choice:
        """What ``rule`` does for ``loss`` when validation batches do (not) carry ground truth."""
        supervised = bool(getattr(loss, "needs_ground_truth", False))
        if rule == "val_psnr":
            if not val_ground_truth:
                raise ValueError(
                    "selection=val_psnr needs validation ground truth, which "
                    "data.val_ground_truth=false removes; choose selection=val_loss or selection=last"
                )
            return Choice(rule, rule, oracle=not supervised, reads_ground_truth=True)
        if rule == "last":
            return Choice(rule, rule, oracle=False, reads_ground_truth=False)
        name = type(loss).__name__
        if not getattr(loss, "selectable", True):
            return Choice(
                rule,
                "last",
                False,
                False,
                note=(
                    f"{name} has no objective that measures the reconstruction (selectable = False); "
                    "val_loss falls back to the last weights"
                ),
            )
        if supervised and not val_ground_truth:
            return Choice(
                rule,
                "last",
                False,
                False,
                note=(
                    f"{name}'s objective needs ground truth, which data.val_ground_truth=false "
                    "removes; val_loss falls back to the last weights"
                ),
            )
        # The supervised oracle's own objective is its validation MSE to the truth: it reads
        # ground truth by definition, and is no oracle for a method that is given it anyway.
        return Choice(rule, rule, oracle=False, reads_ground_truth=supervised)

    def choices(self, loss, val_ground_truth: bool) -> list[Choice]:
        """The configured rule's choice first, then (``test_all``) every other rule that applies."""
        chosen = [self.choose(self.rule, loss, val_ground_truth)]
        if self.test_all:
            for rule in RULES:
                if rule == self.rule or (rule == "val_psnr" and not val_ground_truth):
                    continue
                chosen.append(self.choose(rule, loss, val_ground_truth))
        return chosen
