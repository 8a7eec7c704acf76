"""Field types shared by the settings groups."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value.strip(), strict=False)  # ValueError names the bad value
    return values


Networks = Annotated[list[str], AfterValidator(_check_networks)]
