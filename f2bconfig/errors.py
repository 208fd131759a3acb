"""The errors of configuration changes (all in the API's one envelope)."""

from __future__ import annotations

import errors
from errors import Conflict, Forbidden, InvalidInput, Rejected, TooLarge
from f2b.engine_client import ConfigInvalid  # one class: fail2ban's readers/engine rejected a configuration

__all__ = ["ApplyFailed", "BodyTooLarge", "ConfigBusy", "ConfigInvalid", "ConfigOverridden", "PathForbidden",
           "PathRefused", "PreconditionFailed"]


class PathRefused(InvalidInput):
    code = "invalid_path"


class PathForbidden(Forbidden):
    code = "path_forbidden"


class BodyTooLarge(TooLarge):
    code = "body_too_large"


class PreconditionFailed(errors.PreconditionFailed):
    code = "precondition_failed"


class ConfigBusy(Conflict):
    code = "config_busy"


class ApplyFailed(Rejected):
    """The change was written and applied but fail2ban did not come back as expected: rolled back."""

    code = "apply_failed"


class ConfigOverridden(Conflict):
    """A file fail2ban reads after bangui's override sets the same option: the change would not persist."""

    code = "config_overridden"
