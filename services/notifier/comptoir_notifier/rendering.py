"""French email templates (Jinja2): each notification has ``<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

PACKAGED_TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


@lru_cache(maxsize=8)
def environment(override_dir: str = "") -> Environment:
    """Templates from ``override_dir`` first (``NOTIFIER_TEMPLATES_DIR``: admins' adjusted copies), then ours."""
    loaders = [FileSystemLoader(override_dir)] if override_dir else []
    loaders.append(PackageLoader("comptoir_notifier", "templates"))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def template_names() -> list[str]:
    return sorted({name.split(".")[0] for name in os.listdir(PACKAGED_TEMPLATES) if name != "base.html"})


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render(name: str, context: dict[str, Any], override_dir: str = "") -> RenderedMail:
    env = environment(override_dir)
    subject = env.get_template(f"{name}.subject.txt").render(context)
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=env.get_template(f"{name}.txt").render(context),
        html=env.get_template(f"{name}.html").render(context),
    )
