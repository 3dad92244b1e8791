"""Roles of the perception networks that only score: judges and instruments, never losses or inputs.

A network's `config.json` names its role. The loss networks (E_id, E_attr, E_lnd/E_pose) have none: the
editors optimise them and take them as inputs. A judge (`judges.py`) or the independent realism
instrument (`realism_net.py`) is trained apart and only scores; `refuse_judge` / `refuse_judges` are the
one-line refusals where a loss network or an input is being loaded, so that no training path can use one.
"""

from __future__ import annotations

import torch

from genfields.errors import ConfigError

ROLE = "judge"
REALISM_ROLE = "realism"  # the independent realism network (`realism_net.py`): an instrument, refused like a judge
INSTRUMENT_ROLES = {ROLE: "a judge", REALISM_ROLE: "a realism instrument"}


def is_judge_config(config: dict) -> bool:
    """A judge's or another instrument's config (`INSTRUMENT_ROLES`)."""
    return config.get("role") in INSTRUMENT_ROLES


def refuse_judge(name: str, config: dict) -> None:
    """The one-line refusal of a judge (or the realism instrument) where a loss network or an input is loaded."""
    if is_judge_config(config):
        raise ConfigError(f"perception network '{name}' is {INSTRUMENT_ROLES[config['role']]}: judges and "
                          f"instruments only score editors (genfields evaluate, reproduce) and are never loss "
                          f"networks or inputs")


def is_judge(module: torch.nn.Module) -> bool:
    return bool(getattr(module, "is_judge", False))


def refuse_judges(networks, what: str) -> None:
    """A ConfigError when any of `networks` is a judge (`what` says where they were to be used)."""
    if any(is_judge(net) for net in networks):
        raise ConfigError(f"{what}: a judge network was given; judges only score editors and are never loss "
                          f"networks or inputs")
