"""Reading a user's YAML file (a spec, an agreement, a scenario) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import yaml


def read_yaml(path: Path, error: type[Exception]) -> object:
    """The parsed YAML of `path`; `error` (a ValueError subclass) naming the file when it cannot be read
    or is not YAML."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
