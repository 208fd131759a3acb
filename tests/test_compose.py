"""compose.yaml carries the Containerfile's HEALTHCHECK itself: podman-compose builds OCI images, which drop
HEALTHCHECK (issue 20 item 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_the_containerfiles_healthcheck() -> None:
    containerfile = (ROOT / "Containerfile").read_text()
    image_cmd = json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", containerfile, re.M).group(1))  # type: ignore[union-attr]
    compose = (ROOT / "compose.yaml").read_text()
    block = re.search(r"^    healthcheck:\n((?:      .*\n)+)", compose, re.M)
    assert block, "compose.yaml's service has no healthcheck:"
    test = re.search(r"^      test: (\[.*\])$", block.group(1), re.M)
    assert test and ["CMD", *image_cmd] == json.loads(test.group(1)) == ["CMD", "bangui", "healthcheck"]
    for key in ("interval", "timeout", "start_period", "retries"):
        assert re.search(rf"^      {key}: \S+$", block.group(1), re.M), key
