"""The learning rules by name (``TrainConfig.rule``, ``spikedyn train --rule``)."""

from __future__ import annotations

from .base import LearningRule
from .bptt import BPTT
from .reward import ErrorProjection, LabelProjection, RewardPropagation, SignProjection, check_local_loss

#: rule name -> rule class
RULES: dict[str, type[LearningRule]] = {
    rule.name: rule for rule in (BPTT, LabelProjection, ErrorProjection, SignProjection)
}

#: one line per rule, for help texts
RULE_HELP: dict[str, str] = {
    "bptt": "surrogate-gradient BPTT through all layers (read-out loss only)",
    "brp": "TP_BRP reward propagation: label y* projected to each hidden layer through a fixed random B_l",
    "err": "TP_err (direct feedback alignment): output error r - y* projected through B_l",
    "sign": "TP_sign: sign(r - y*) projected through B_l",
}


def check_rule(name: str) -> str:
    """Return ``name`` if it is a known rule, else raise a ``ValueError`` listing the rules."""
    if name not in RULES:
        raise ValueError(f"unknown learning rule {name!r}; choose one of {', '.join(RULES)}")
    return name


def make_rule(name: str, local_loss: str = "inject") -> LearningRule:
    """A fresh rule by name: ``bptt``, ``brp``, ``err`` or ``sign``.  ``local_loss``: the reward rules' form
    of a hidden layer's loss, ``inject`` (the authors' code) or ``difference`` (the paper's Eq. 8-9); BPTT has
    no local loss and takes only the default."""
    cls = RULES[check_rule(name)]
    check_local_loss(local_loss)
    if issubclass(cls, RewardPropagation):
        return cls(local_loss=local_loss)
    if local_loss != "inject":
        raise ValueError(
            f"local loss {local_loss!r} is a form of reward propagation's hidden-layer loss; rule {name!r} has none "
            f"(use --rule brp, err or sign, or leave --local-loss at inject)"
        )
    return cls()
