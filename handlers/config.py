"""fail2ban's configuration: the jail catalogue, activation, file editing and the change log.

Every change goes through `f2bconfig.engine` (validated with fail2ban's own tools on a staged copy,
applied, verified, rolled back on failure). File bodies: plain text, or JSON `{"content": "..."}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from actions import config as actions
from core.roles import Role
from errors import InvalidInput, NotFound
from f2bconfig import catalogue
from f2bconfig.engine import engine_for
from f2bconfig.errors import BodyTooLarge
from f2bconfig.paths import MAX_FILE_BYTES, ConfigTree, etag_of
from handlers.api import ABSOLUTE_PATH_SCHEMA, Call, iso, json_response, route
from store.base import offload

_JSON_LIMIT = 6 * MAX_FILE_BYTES + 1024  # JSON escaping can grow a text up to 6x (\uXXXX)


class Overrides(msgspec.Struct, forbid_unknown_fields=True):
    logpath: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=4096,
                                                        extra_json_schema=ABSOLUTE_PATH_SCHEMA)]],
                       msgspec.Meta(max_length=64)] | None = None
    maxretry: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    findtime: Annotated[int, msgspec.Meta(ge=1)] | None = None
    bantime: Annotated[int, msgspec.Meta(ge=-1)] | None = None
    port: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[A-Za-z0-9,:_ -]*$")] | None = None
    action: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    # fail2ban's backends (jail.conf), systemd with its options in brackets: systemd[journalflags=1]
    backend: Annotated[str, msgspec.Meta(
        max_length=200, pattern=r"^(auto|polling|pyinotify|gamin|systemd)(\[[^\]\n]*\])?$")] | None = None


class FileBody(msgspec.Struct, forbid_unknown_fields=True):
    content: str


class JailState(msgspec.Struct):
    jail: str
    active: bool


def _tree(call: Call) -> ConfigTree:
    return ConfigTree(call.deps.settings.fail2ban_config_dir, call.deps.settings.data_dir)


async def _raw_body(call: Call, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in call.request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"a config file may hold at most {MAX_FILE_BYTES} bytes",
                               details={"limit_bytes": MAX_FILE_BYTES})
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(call: Call) -> bool:
    return call.request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


# ---- catalogue and activation -----------------------------------------------------------------------------
async def list_config_jails(call: Call) -> dict[str, Any]:
    jails = await offload(catalogue.jails, call.deps.settings.fail2ban_config_dir)
    active = set(await call.deps.fail2ban.jail_names())
    return {"jails": [{"name": j["name"], "enabled": j["enabled"], "active": j["name"] in active,
                       "filter": j["filter"], "logpath": j["logpath"], "backend": j["backend"],
                       "settings": j["settings"], "source": j["source"]} for j in jails]}


async def activate_jail(call: Call) -> JailState:
    raw = (await _raw_body(call, 64 * 1024)).strip()
    try:
        body = msgspec.json.decode(raw, type=Overrides) if raw else Overrides()
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"invalid request body: {exc}", code="invalid_body") from None
    overrides = {f: getattr(body, f) for f in body.__struct_fields__}
    result = await actions.activate_jail(call.deps, call.actor, call.param("jail"), overrides)
    return JailState(result["jail"], result["active"])


async def deactivate_jail(call: Call) -> JailState:
    result = await actions.deactivate_jail(call.deps, call.actor, call.param("jail"))
    return JailState(result["jail"], result["active"])


# ---- files ------------------------------------------------------------------------------------------------
async def list_files(call: Call) -> dict[str, Any]:
    files = await offload(_tree(call).files)
    return {"files": [f | {"modified": iso(f["modified"])} for f in files]}


async def get_file(call: Call) -> Response:
    rel = call.param("path")
    data = await offload(_tree(call).read, rel)
    if data is None:
        raise NotFound(f"{rel} does not exist", code="file_not_found", details={"path": rel})
    return Response(data, media_type="text/plain; charset=utf-8", headers={"ETag": etag_of(data)})


async def put_file(call: Call) -> Response:
    rel = call.param("path")
    _tree(call).resolve(rel)  # path errors before reading a body
    raw = await _raw_body(call, _JSON_LIMIT)
    content = raw
    # JSON {"content": ...} when declared, or when the body is one (curl -d sends it as a form): an
    # INI file never starts with "{"
    if _is_json(call) or raw.lstrip().startswith(b"{"):
        try:
            content = msgspec.json.decode(raw, type=FileBody).content.encode()
        except msgspec.DecodeError as exc:
            if _is_json(call):
                raise InvalidInput(f"invalid request body: {exc}", code="invalid_body") from None
    result = await actions.write_file(call.deps, call.actor, rel, content, call.request.headers.get("if-match"))
    return json_response({"path": rel, "etag": result["etag"], "change": result["change"]},
                         201 if result["created"] else 200, headers={"ETag": result["etag"]})


async def delete_file(call: Call) -> dict[str, Any]:
    rel = call.param("path")
    result = await actions.delete_file(call.deps, call.actor, rel, call.request.headers.get("if-match"))
    return {"path": rel, "deleted": True, "change": result["change"]}


# ---- change log -------------------------------------------------------------------------------------------
async def list_changes(call: Call) -> dict[str, Any]:
    engine = engine_for(call.deps)
    page = await offload(engine.changes.page, 200)
    reverted_by = engine.changes.reverted_by(page)  # the page shows `Revert` only where it still applies
    return {"changes": [{"id": c["id"], "time": iso(c["time"]), "actor": c["actor"], "action": c["action"],
                         "target": c["target"], "files": c["files"], "diff": c["diff"],
                         "outcome": c.get("outcome", "applied"), "state": c.get("state", "after"),
                         "reverted": c["id"] in reverted_by, "reverted_by": reverted_by.get(c["id"])}
                        | ({"fail2ban_verified": c["fail2ban_verified"]} if "fail2ban_verified" in c else {})
                        for c in page]}


async def revert_change(call: Call) -> dict[str, Any]:
    return await actions.revert_change(call.deps, call.actor, call.param("id"))


routes = [
    route("GET", "/config/jails", list_config_jails, Role.admin,
          "Every jail the configuration defines, active or not, with effective settings and source file."),
    route("POST", "/config/jails/{jail}/activate", activate_jail, Role.admin,
          "Enable a configured jail (optional overrides), reload and verify; rolled back on failure.",
          response=JailState, action=actions.activate_jail),
    route("POST", "/config/jails/{jail}/deactivate", deactivate_jail, Role.admin,
          "Disable a jail (jail.d/zz-bangui.local), reload and verify.", response=JailState,
          action=actions.deactivate_jail),
    route("GET", "/config/files", list_files, Role.admin, "fail2ban's configuration files."),
    route("GET", "/config/files/{path:path}", get_file, Role.admin, "One configuration file as text, with an ETag."),
    route("PUT", "/config/files/{path:path}", put_file, Role.admin,
          "Create/replace a .local file (or a .conf bangui created): If-Match required for an existing file; "
          "validated, applied and verified.", action=actions.write_file),
    route("DELETE", "/config/files/{path:path}", delete_file, Role.admin,
          "Delete a file bangui may edit; validated, applied and verified.", action=actions.delete_file),
    route("GET", "/config/changes", list_changes, Role.admin, "Applied configuration changes: who, when, files, diff."),
    route("POST", "/config/changes/{id}/revert", revert_change, Role.admin,
          "Revert one change (validated, applied and verified like any change).", action=actions.revert_change),
]
