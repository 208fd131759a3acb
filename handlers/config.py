"""fail2ban's configuration: the jail catalogue, activation, file editing and the change log.

Every change goes through `f2bconfig.engine` (validated with fail2ban's own tools on a staged copy,
applied, verified, rolled back on failure). File bodies: plain text, or JSON `{"content": "..."}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from actions import config as actions
from core.addresses import jail_name
from core.roles import Role
from errors import InvalidInput, NotFound
from f2bconfig import catalogue, origins, override
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


_NAME = r"^[A-Za-z0-9_.-]+(\[[^\r\n\]]*\])?$"  # a filter or action file name, with [options]
_LINE = r"^[^\r\n]*$"
Unset = msgspec.UnsetType
_YEARS = 10 * 365 * 86400
_FileName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_NAME)]
_Backend = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^(auto|pyinotify|polling|systemd)(\[[^\r\n\]]*\])?$")]
_Ports = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9,:_ -]*$")]
_Protocol = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]{1,20}$")]
_Path = Annotated[str, msgspec.Meta(min_length=2, max_length=4096, pattern=r"^/[^\x00\r\n]*$")]
_LogPaths = Annotated[list[_Path], msgspec.Meta(min_length=1, max_length=64)]
_Ignored = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\s#;]+$")]
_Action = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=_LINE)]
_Count = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
_Seconds = Annotated[int, msgspec.Meta(ge=1, le=_YEARS)]
_BanSeconds = Annotated[int, msgspec.Meta(ge=-1, le=_YEARS)]
_Factor = Annotated[float, msgspec.Meta(gt=0, le=1000)]


class JailOptions(msgspec.Struct, forbid_unknown_fields=True):
    """The guided jail form's fields (issue 24). Absent: untouched; null: bangui's value goes (the one from
    jail.conf/jail.d applies again); a value: set in jail.d/zz-bangui.local."""
    activate: bool = False
    filter: _FileName | None | Unset = msgspec.UNSET
    logpath: _LogPaths | None | Unset = msgspec.UNSET
    backend: _Backend | None | Unset = msgspec.UNSET
    port: _Ports | None | Unset = msgspec.UNSET
    protocol: _Protocol | None | Unset = msgspec.UNSET
    maxretry: _Count | None | Unset = msgspec.UNSET
    findtime: _Seconds | None | Unset = msgspec.UNSET
    bantime: _BanSeconds | None | Unset = msgspec.UNSET
    bantime_increment: bool | None | Unset = msgspec.UNSET
    bantime_factor: _Factor | None | Unset = msgspec.UNSET
    bantime_maxtime: _Seconds | None | Unset = msgspec.UNSET
    ignoreip: Annotated[list[_Ignored], msgspec.Meta(max_length=1000)] | None | Unset = msgspec.UNSET
    banaction: _FileName | None | Unset = msgspec.UNSET
    action: Annotated[list[_Action], msgspec.Meta(min_length=1, max_length=20)] | None | Unset = msgspec.UNSET


def _option_values(body: JailOptions) -> dict[str, str | None]:
    """The form's fields as fail2ban's keys and configuration text (lists one per line)."""
    values: dict[str, str | None] = {}
    for field in body.__struct_fields__:
        value = getattr(body, field)
        if field == "activate" or value is msgspec.UNSET:
            continue
        if field == "bantime" and value == 0:
            raise InvalidInput("bantime must be -1 (permanent) or at least 1 second", code="invalid_body")
        key = field.replace("bantime_", "bantime.")
        if value is None:
            values[key] = None
        elif isinstance(value, list):
            values[key] = (" " if field == "ignoreip" else "\n").join(v.strip() for v in value if v.strip())
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:
            values[key] = str(value)
    if not values and not body.activate:
        raise InvalidInput("nothing to change: give at least one option (or activate)", code="invalid_body")
    return values


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


async def get_config_jail(call: Call) -> dict[str, Any]:
    """One jail as the guided form shows it: the effective values (fail2ban's readers) and, per option, the file
    and section that set it (every setting in fail2ban's order in `chain`)."""
    name = jail_name(call.param("jail"))
    root = call.deps.settings.fail2ban_config_dir
    conf = await offload(catalogue.jail, root, name)
    if conf is None:
        raise NotFound(f"no configuration defines a jail named {name!r}", code="jail_not_found", details={"jail": name})
    where = await offload(origins.origins, root, name)
    active = name in set(await call.deps.fail2ban.jail_names())
    return {"name": name, "enabled": conf["enabled"], "active": active, "filter": conf["filter"],
            "logpath": conf["logpath"], "backend": conf["backend"], "settings": conf["settings"],
            "source": conf["source"], "error": conf.get("error"), "override_file": override.JAIL_OVERRIDE,
            "options": where}


async def set_jail_options(call: Call) -> dict[str, Any]:
    body: JailOptions = call.body
    result = await actions.set_jail_options(call.deps, call.actor, call.param("jail"), _option_values(body),
                                            body.activate)
    return {"jail": result["section"], "change": result["change"], "set": result["set"], "diff": result["diff"]}


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
    route("GET", "/config/jails/{jail}", get_config_jail, Role.admin,
          "One configured jail: effective values, and the file and section each option comes from."),
    route("PATCH", "/config/jails/{jail}", set_jail_options, Role.admin,
          "Set (or with null, drop) a jail's options in bangui's override; optionally activate it. Validated, "
          "applied, verified, revertible.", body=JailOptions, action=actions.set_jail_options),
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
