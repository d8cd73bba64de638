"""Learning rules: one interface the trainer asks for the loss to minimise (spec DESIGN: ``learning/``).

=========  ===================================================================================
name       rule
=========  ===================================================================================
``bptt``   surrogate-gradient BPTT through layers and time: ``L = L_out``
``brp``    TP_BRP reward propagation: ``L = L_out + sum_l sum_t sum_b <S_l(t)[b], (y* B_l)[b]>``
``err``    TP_err (DFA): as ``brp`` with ``(r - y*) B_l``
``sign``   TP_sign: as ``brp`` with ``sign(r - y*) B_l``
=========  ===================================================================================

``B_l`` is the fixed random projection owned by hidden layer ``l``'s
:class:`~spikedyn.layers.SpikeTap` (a model buffer, saved with checkpoints).  Usage::

    rule = make_rule("brp")
    taps = rule.attach(model)                    # reward propagation: every tap detaches
    out = model(x)
    result = rule(out, target, rate_mse, taps)   # RuleLoss(total, parts)
    result.total.backward()
"""

from .base import LearningRule, NetworkOutput, ReadoutLoss, RuleLoss
from .bptt import BPTT
from .registry import RULE_HELP, RULES, check_rule, make_rule
from .reward import (
    ErrorProjection,
    LabelProjection,
    RewardPropagation,
    SignProjection,
    projection_loss,
    teaching_signal,
)

__all__ = [
    "BPTT",
    "ErrorProjection",
    "LabelProjection",
    "LearningRule",
    "NetworkOutput",
    "ReadoutLoss",
    "RULES",
    "RULE_HELP",
    "RewardPropagation",
    "RuleLoss",
    "SignProjection",
    "check_rule",
    "make_rule",
    "projection_loss",
    "teaching_signal",
]
