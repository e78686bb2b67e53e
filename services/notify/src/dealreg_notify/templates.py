"""Plain-text and HTML bodies from the package's Jinja2 templates; HTML autoescaped, undefined names an error."""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


class _Environment(Environment):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # a plain dict instead of Jinja's ChainMap over the environment's globals, which every render copied key by
        # key (a tenth of notify's CPU); nothing changes the globals once the templates are loaded
        return {**self.globals, **(d or {})}


@cache
def _environment() -> Environment:
    return _Environment(
        loader=PackageLoader("dealreg_notify", "templates"),
        # partner-supplied text (company names, descriptions) lands in the HTML: escape all of it
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # the templates ship with the package: looked up in memory, not checked on disk at every render
        auto_reload=False,
    )


def render(name: str, **context: Any) -> tuple[str, str]:
    """(text, html) of the template pair `<name>.txt` and `<name>.html`."""
    env = _environment()
    return env.get_template(f"{name}.txt").render(context), env.get_template(f"{name}.html").render(context)
