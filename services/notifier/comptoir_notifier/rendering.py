"""French email templates (Jinja2): each notification has ``<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_environment = Environment(
    loader=PackageLoader("comptoir_notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render(name: str, context: dict[str, Any]) -> RenderedMail:
    subject = _environment.get_template(f"{name}.subject.txt").render(context)
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=_environment.get_template(f"{name}.txt").render(context),
        html=_environment.get_template(f"{name}.html").render(context),
    )
