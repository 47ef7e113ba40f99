# -*- coding: utf-8 -*-
# Copyright (c) DealerScope Ops
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render a runbook report (the dict ``build_report`` makes) as Markdown and HTML through Jinja2 templates.

Controller-side only: the ``runbook_end`` action plugin calls ``render_all`` on the Ansible controller, then
writes the files. Nothing here runs on managed hosts, so it may import jinja2 and ``ansible.errors``.

The built-in templates are ``roles/runbook_end/templates/report.md.j2`` and ``report.html.j2``
(``BUILTIN_TEMPLATES_DIR``). To change the layout, copy either or both into a directory of your own, edit
them and pass that directory as ``templates_dir``: it is searched first, then the built-in directory, so a
directory holding only ``report.md.j2`` changes the Markdown and keeps the built-in HTML.

A template receives one variable, ``report``, plus these helpers:

* filters ``format_value`` (``value|format_value(unit)``), ``format_duration``, ``badge`` (status to
  ``BADGES`` text) and ``md`` (escape for a Markdown table cell);
* globals ``matrix_columns(report)`` (the hosts x checks matrix columns), ``worst_checks(checks)`` (check
  name to its worst check on a host), ``rank(status)`` and ``BADGES``.

The HTML environment autoescapes every ``{{ ... }}`` with ``html.escape(..., quote=True)``; mark trusted
markup with ``|safe``. The Markdown environment does not escape: use ``|md`` on untrusted text. Both use
``StrictUndefined``, ``trim_blocks``, ``lstrip_blocks`` and ``keep_trailing_newline``.

Every failure (missing directory, syntax error, undefined variable, any exception while rendering) raises
``AnsibleError`` naming the template file, the line when Jinja2 knows it, and what went wrong.
"""

from __future__ import annotations

import html
import os

import jinja2
from ansible.errors import AnsibleError
from markupsafe import Markup

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import rank
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import format_duration, format_value

BUILTIN_TEMPLATES_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles',
                                                      'runbook_end', 'templates'))
TEMPLATE_NAMES = {'md': 'report.md.j2', 'html': 'report.html.j2'}
BADGES = {'ok': '\U0001F7E2 OK', 'warning': '\U0001F7E0 WARNING', 'critical': '\U0001F534 CRITICAL'}


class ReportTemplateError(AnsibleError):
    """A report template could not be loaded or rendered; the message says which file, where and why."""

    # The message already says what the cause was; ansible-core >= 2.19 would otherwise append it a second time.
    _include_cause_message = False


# --------------------------------------------------------------------------- helpers the templates use

def md(text):
    """Escape text for a Markdown table cell (also neutralises inline HTML)."""
    text = ' '.join(str(text).split())
    text = html.escape(text, quote=False)
    for char in '\\|`*_[]':
        text = text.replace(char, '\\' + char)
    return text


def badge(status):
    """The coloured badge text of a status (ok, warning, critical); any other status is an error."""
    try:
        return BADGES[status]
    except KeyError:
        raise ValueError('no badge for status %r (expected one of %s)' % (status, ', '.join(BADGES))) from None


def matrix_columns(report):
    """Check names of all hosts grouped by prefix (the part before the first ':'), in first-seen order.

    Returns ``[(group_label_or_None, [(check_name, column_label), ...]), ...]``; a None label is a
    check without prefix that has its own column.
    """
    groups = []
    index = {}
    seen = set()
    for entry in report['hosts'].values():
        for check in entry['checks']:
            name = check['name']
            if name in seen:
                continue
            seen.add(name)
            if ':' in name:
                prefix, rest = name.split(':', 1)
                key = ('prefix', prefix)
                if key not in index:
                    index[key] = len(groups)
                    groups.append((prefix, []))
                groups[index[key]][1].append((name, rest))
            else:
                index[('name', name)] = len(groups)
                groups.append((None, [(name, name)]))
    return groups


def worst_checks(checks):
    """Check name -> the worst check of that name (the first one among equally bad ones)."""
    by_name = {}
    for check in checks:
        if check['name'] not in by_name or rank(check['status']) > rank(by_name[check['name']]['status']):
            by_name[check['name']] = check
    return by_name


def _html_finalize(value):
    """Escape every ``{{ ... }}`` of the HTML template as ``html.escape(str(value), quote=True)`` does.

    Jinja2's own autoescaping (markupsafe) writes quotes as ``&#34;``/``&#39;``; doing it here keeps the
    output of the built-in template identical to the report HTML of earlier releases. Markup (``|safe``,
    macros) passes unchanged.
    """
    if hasattr(value, '__html__'):
        return value
    return Markup(html.escape(str(value), quote=True))


# --------------------------------------------------------------------------- rendering

def _environment(kind, templates_dir):
    search_path = [BUILTIN_TEMPLATES_DIR]
    if templates_dir is not None and str(templates_dir) != '':  # '' (an unset option) means the built-ins only
        templates_dir = os.path.abspath(os.path.expanduser(str(templates_dir)))
        if not os.path.isdir(templates_dir):
            raise ReportTemplateError('report templates directory %s does not exist or is not a directory; it should hold '
                                      'report.md.j2 and/or report.html.j2 (copies of %s)' % (templates_dir, BUILTIN_TEMPLATES_DIR))
        search_path.insert(0, templates_dir)
    options = dict(loader=jinja2.FileSystemLoader(search_path), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                   trim_blocks=True, lstrip_blocks=True, autoescape=kind == 'html')
    if kind == 'html':
        options['finalize'] = _html_finalize
    env = jinja2.Environment(**options)
    env.filters.update(format_value=format_value, format_duration=format_duration, badge=badge, md=md)
    env.globals.update(matrix_columns=matrix_columns, worst_checks=worst_checks, rank=rank, BADGES=BADGES)
    return env, search_path


def _failing_frame(exc, search_path):
    """(file, line) of the innermost template frame of ``exc``'s traceback (Jinja2 rewrites them to the template)."""
    roots = [os.path.realpath(path) for path in search_path]
    found = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename and any(os.path.realpath(filename).startswith(root + os.sep) for root in roots):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _where(filename, lineno):
    return '%s line %d' % (filename, lineno) if lineno else filename


def render(report, kind, templates_dir=None):
    """Render ``report`` with the ``kind`` ('md' or 'html') template; ``templates_dir`` is searched before the built-ins.

    ``templates_dir`` None or '' means the built-in templates only. Raises ``AnsibleError`` (``ReportTemplateError``)
    when the directory is missing or a template cannot be loaded or rendered.
    """
    if kind not in TEMPLATE_NAMES:
        raise ValueError('kind must be one of %s, got %r' % (', '.join(sorted(TEMPLATE_NAMES)), kind))
    env, search_path = _environment(kind, templates_dir)
    name = TEMPLATE_NAMES[kind]
    template = None
    try:
        template = env.get_template(name)
        return template.render(report=report)
    except jinja2.TemplateSyntaxError as exc:
        filename = exc.filename or (template.filename if template is not None else name)
        raise ReportTemplateError('syntax error in report template %s: %s' % (_where(filename, exc.lineno), exc.message)) from exc
    except jinja2.TemplateNotFound as exc:
        if template is None:
            raise ReportTemplateError('report template %s not found in %s' % (exc.name, ', '.join(search_path))) from exc
        filename, lineno = _failing_frame(exc, search_path)
        raise ReportTemplateError('error rendering report template %s: template %s not found in %s' % (
            _where(filename or template.filename, lineno), exc.name, ', '.join(search_path))) from exc
    except Exception as exc:  # pylint: disable=broad-exception-caught
        filename, lineno = _failing_frame(exc, search_path)
        if filename is None:
            filename = template.filename if template is not None else name
        detail = str(exc) if isinstance(exc, jinja2.UndefinedError) else '%s: %s' % (type(exc).__name__, exc)
        raise ReportTemplateError('error rendering report template %s: %s' % (_where(filename, lineno), detail)) from exc


def render_all(report, templates_dir=None):
    """Both renderings: ``{'md': ..., 'html': ...}``."""
    return dict((kind, render(report, kind, templates_dir)) for kind in TEMPLATE_NAMES)
