"""Schema fuzzing (marker `fuzz`, `./dev fuzz`): schemathesis generates requests from the OpenAPI document and sends
them to a real `bangui serve`, with an admin token and with no token, each for a bounded time. Any 5xx, any
response that violates the document (schema, content type) or any status it does not declare fails the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.reliability.helpers import ADMIN_ENV, admin_token

pytestmark = pytest.mark.fuzz
SECONDS = {"admin": int(os.environ.get("BANGUI_FUZZ_SECONDS", "90")), "anonymous": 40}
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.fail("schemathesis is not installed: run ./dev fuzz (it installs the fuzz extra)")
    return found


@pytest.mark.parametrize("persona", ["admin", "anonymous"])
@pytest.mark.timeout(SECONDS["admin"] * 3 + 240)  # the run's own bound (below) and a server start, not 120 s
def test_schema_fuzz(bangui_server: Any, tmp_path: Path, persona: str) -> None:
    server = bangui_server(workers=2, env=ADMIN_ENV)
    token = admin_token(server.data_dir)
    auth = {"Authorization": f"Bearer {token}"}
    schema = httpx.get(server.url + "/api/v1/openapi.json", headers=auth, timeout=30)
    assert schema.status_code == 200
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(schema.json()))
    args = [_st(), "run", str(schema_file), "--url", server.url, "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing", "--max-time", str(SECONDS[persona]), "--workers", "2",
            "--request-timeout", "30", "--suppress-health-check", "all", "--warnings", "off",
            # Logging out or deleting the fuzzer's own credentials is not a defect: keep the token alive. The log
            # stream and the page's event stream last until the client leaves (no end to read; their own tests
            # cover them: tests/handlers/test_logs.py, test_events.py).
            "--exclude-path-regex", "^/api/v1/(auth/(logout|sessions)|logs/stream|events)$",
            "--no-color"]
    if persona == "admin":
        args += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=SECONDS[persona] * 3 + 120, check=False,
                          cwd=tmp_path)  # its .schemathesis cache stays out of the work tree
    report = done.stdout[-12000:] + done.stderr[-3000:]
    print(report)
    assert done.returncode == 0, report
