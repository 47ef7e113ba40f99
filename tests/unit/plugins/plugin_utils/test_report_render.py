# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The report templates (roles/runbook_end/templates) and their renderer (plugins/plugin_utils/report_render.py)."""

from __future__ import annotations

import html
import os
import pathlib
import re
from html.parser import HTMLParser

import pytest
from ansible.errors import AnsibleError

from ansible_collections.dealerscope.ops.plugins.module_utils.ops_checks import make_check, threshold_check
from ansible_collections.dealerscope.ops.plugins.module_utils.ops_report import build_report
from ansible_collections.dealerscope.ops.plugins.plugin_utils.report_render import (
    BADGES,
    BUILTIN_TEMPLATES_DIR,
    TEMPLATE_NAMES,
    matrix_columns,
    render,
    render_all,
)

REPO = pathlib.Path(__file__).resolve().parents[4]
STARTED = '2025-01-31T06:00:00Z'
FINISHED = '2025-01-31T06:00:07.250Z'
VOID = {'meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr', 'source', 'area', 'base', 'embed', 'param', 'track'}
HOSTILE = ['<script>alert(1)</script>', 'a|b', 'run `rm -rf /` now', '*_[]\\', '"quoted" & \'single\'']
MD_SPECIAL = '\\|`*_[]'


class Page(HTMLParser):
    """Checks that every non-void element is closed in order; records tags, attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.tags = []
        self.attrs = []
        self.text = []
        self.decls = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append('unexpected </%s>, open: %s' % (tag, self.stack[-3:]))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def handle_decl(self, decl):
        self.decls.append(decl)


def parse_html(text):
    parser = Page()
    parser.feed(text)
    parser.close()
    return parser


def md_cells(line):
    """Split a Markdown table row on unescaped pipes and decode each cell back to plain text.

    Fails when a cell holds a Markdown special character that is not escaped.
    """
    assert line.startswith('| ') and line.endswith(' |'), line
    cells, current, index = [], [], 0
    body = line[1:-1]
    while index < len(body):
        char = body[index]
        if char == '\\':
            assert index + 1 < len(body) and body[index + 1] in MD_SPECIAL, 'stray backslash in %r' % line
            current.append(body[index + 1])
            index += 2
            continue
        if char == '|':
            cells.append(''.join(current))
            current = []
        else:
            assert char not in MD_SPECIAL, 'unescaped %r in %r' % (char, line)
            current.append(char)
        index += 1
    cells.append(''.join(current))
    return [html.unescape(cell[1:-1]) for cell in cells]  # each cell is ' text '


def md_tables(markdown):
    return [line for line in markdown.splitlines() if line.startswith('| ') and not line.startswith('| Status | Host')
            and not line.startswith('| Check | Status')]


def hostile_report():
    hosts = {}
    for number, text in enumerate(HOSTILE):
        hosts['h%d %s' % (number, text)] = [
            make_check('chk:%s' % text, 'critical', text, None, 'message %s' % text, alert='alert %s' % text),
            make_check(text, 'ok', 1, 2, text),
        ]
    meta = dict(('k%d %s' % (number, text), 'v %s' % text) for number, text in enumerate(HOSTILE))
    return build_report('daily', STARTED, FINISHED, hosts, meta=meta)


def matrix_report():
    return build_report('daily', STARTED, FINISHED, {
        'a': [make_check('disk:/var', 'ok', 41.0, 80, 'var ok', unit='%'), make_check('load', 'ok', 0.5, 4, 'load ok'),
              make_check('disk:/', 'ok', 37.0, 80, 'root ok', unit='%'),
              make_check('load', 'critical', 9.5, 4, 'load way too high', alert='resource_exhaustion'),
              make_check('load', 'warning', 5.0, 4, 'load high', alert='resource_exhaustion')],
        'b': [make_check('load', 'ok', 0.5, 4, 'load fine'),
              make_check('disk:/var', 'warning', 83.1, 80, 'var full', unit='%', alert='resource_exhaustion')],
    })


def matrix_rows(page):
    """{host: [(cell class, cell title, cell text), ...]} of the hosts x checks table."""
    table = page.split('<table class="matrix">', 1)[1].split('</table>', 1)[0]
    rows = re.findall(r'<tr><th class="host s-\w+" title="\w+">([^<]*)</th>\n(.*?)</tr>', table, re.S)
    assert rows
    return dict((host, re.findall(r'<td class="([\w-]+)" title="([^"]*)">(.*?)</td>', cells)) for host, cells in rows)


# --------------------------------------------------------------------------- built-in templates


def test_builtin_templates_dir_is_the_roles_templates():
    assert os.path.isabs(BUILTIN_TEMPLATES_DIR)
    assert os.path.realpath(BUILTIN_TEMPLATES_DIR) == str(REPO / 'roles' / 'runbook_end' / 'templates')
    assert TEMPLATE_NAMES == {'md': 'report.md.j2', 'html': 'report.html.j2'}
    for name in TEMPLATE_NAMES.values():
        text = (REPO / 'roles' / 'runbook_end' / 'templates' / name).read_text(encoding='utf-8')
        assert text.startswith('{#') and 'To override' in text


def test_html_is_one_complete_document():
    report = build_report('daily', STARTED, FINISHED, {'app1': [threshold_check('cpu', 95.0, warn=70, crit=90, unit='%')]},
                          meta={'inventory': 'lab'})
    page = render(report, 'html')
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n')
    assert page.endswith('</footer>\n</body></html>\n')
    assert page.count('<!DOCTYPE') == 1 and page.count('<html') == 1 and page.count('</html>') == 1
    assert '{#' not in page and '{{' not in page and '{%' not in page
    parsed = parse_html(page)
    assert parsed.decls == ['DOCTYPE html']
    assert parsed.errors == [] and parsed.stack == []
    assert parsed.tags.count('style') == 1 and 'script' not in parsed.tags
    footer = re.findall(r'<footer>(.*?)</footer>', page)
    assert footer == ['dealerscope.ops.runbook_end &middot; schema version 1 &middot; report.json holds the full data']
    assert 'ops_report' not in page
    assert 'report.json holds the full data' in ' '.join(parsed.text)
    assert '<title>daily runbook: CRITICAL (2025-01-31T06:00:00Z)</title>' in page
    assert '<p class="meta">hosts: 0 ok, 0 warning, 1 critical &middot; inventory: lab</p></section>' in page


def test_markdown_layout():
    report = build_report('daily', STARTED, FINISHED, {'app1': [threshold_check('cpu', 95.0, warn=70, crit=90, unit='%', alert='res'),
                                                                make_check('ntp', 'ok', True, None, 'synced')],
                                                       'app2': []},
                          meta={'fleet_size': 2, 'inventory': 'lab'})
    markdown = render(report, 'md')
    assert markdown.endswith('so its state is unknown |\n') and not markdown.endswith('\n\n')
    lines = markdown.splitlines()
    assert lines[:3] == ['# daily runbook report', '', '**Status: %s**' % BADGES['critical']]
    assert lines[3:12] == ['', '- Started: 2025-01-31T06:00:00Z', '- Finished: 2025-01-31T06:00:07.250Z', '- Duration: 7.2 s',
                           '- Hosts: 2 (0 ok, 0 warning, 2 critical)', '- Checks: 3 (1 ok, 0 warning, 2 critical)',
                           '- Alerts: monitoring\\_gap 1, res 1', '- fleet\\_size: 2', '- inventory: lab']
    assert '| ' + BADGES['critical'] + ' | app1 | cpu | res | cpu is 95 % (critical at &gt;= 90 %) |' in lines
    assert '| ntp | %s | yes |  | synced |' % BADGES['ok'] in lines
    assert '### app2: %s' % BADGES['critical'] in lines


def test_report_without_problems():
    report = build_report('daily', STARTED, FINISHED, {'a': [make_check('cpu', 'ok', 1, 2, 'fine')]})
    out = render_all(report)
    assert set(out) == {'md', 'html'}
    assert 'None: every check is ok.' in out['md'] and '<p>None: every check is ok.</p>' in out['html']
    assert '<ul class="problems">' not in out['html'] and '| Status | Host |' not in out['md']
    assert '<details><summary>' in out['html']  # an ok host is collapsed


def test_a_timeline_is_a_section_of_its_own_in_order_and_escaped():
    timeline = [{'offset_s': 0, 'event': 'drill started'}, {'offset_s': 6.25, 'event': 'primary <db1> lost | killed'},
                {'offset_s': 41.0, 'event': 'API answering (RTO)'}]
    report = build_report('dr_drill', STARTED, FINISHED, {'db2': [make_check('drill:rto', 'ok', 41.0, 14400, 'RTO 41 s')]},
                          meta={'timeline': timeline, 'rto_s': 41.0})
    out = render_all(report)
    lines = out['md'].splitlines()
    assert lines[lines.index('## Timeline') + 2:lines.index('## Timeline') + 7] == [
        '| +s | Event |', '|---:|---|', '| 0.0 | drill started |', '| 6.2 | primary &lt;db1&gt; lost \\| killed |', '| 41.0 | API answering (RTO) |']
    assert '- timeline:' not in out['md'] and '- rto\\_s: 41' in out['md']
    page = out['html']
    section = page.split('<section><h2>Timeline</h2>', 1)[1].split('</section>', 1)[0]
    assert re.findall(r'<tr><td>([^<]*)</td><td>([^<]*)</td></tr>', section) == [
        ('0.0', 'drill started'), ('6.2', 'primary &lt;db1&gt; lost | killed'), ('41.0', 'API answering (RTO)')]
    assert 'timeline:' not in page and parse_html(page).errors == []


def test_no_timeline_no_section():
    out = render_all(build_report('daily', STARTED, FINISHED, {'a': [make_check('cpu', 'ok', 1, 2, 'fine')]}, meta={'timeline': []}))
    assert 'Timeline' not in out['md'] and 'Timeline' not in out['html']


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match='kind'):
        render(build_report('daily', STARTED, FINISHED, {}), 'txt')


# --------------------------------------------------------------------------- escaping


def test_hostile_strings_are_escaped_in_html():
    report = hostile_report()
    page = render(report, 'html')
    parsed = parse_html(page)
    assert parsed.errors == [] and parsed.stack == []
    assert 'script' not in parsed.tags
    assert '<script' not in page and '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    assert '&quot;quoted&quot; &amp; &#x27;single&#x27;' in page
    text = ''.join(parsed.text)
    values = [value for _key, value in parsed.attrs]
    for item in HOSTILE:
        assert '<b>h%d %s</b>' % (HOSTILE.index(item), html.escape(item)) in page  # host name in the problem list
        assert 'message %s' % item in text  # messages come back intact once parsed
        assert 'CRITICAL: message %s' % item in values  # the matrix cell's title attribute
        assert 'chk:%s' % item in values  # prefixed check names as sub-column titles
        assert 'v %s' % item in text and 'k%d %s' % (HOSTILE.index(item), item) in text  # meta


def test_hostile_strings_are_escaped_in_markdown_table_cells():
    report = hostile_report()
    markdown = render(report, 'md')
    assert '<script>' not in markdown and '&lt;script&gt;alert(1)&lt;/script&gt;' in markdown
    rows = [md_cells(line) for line in md_tables(markdown)]
    assert all(len(row) == 5 for row in rows)  # escaped pipes add no columns
    problems = [row for row in rows if row[0] == BADGES['critical']]
    checks = [row for row in rows if row[1] in BADGES.values()]
    for number, item in enumerate(HOSTILE):
        assert [BADGES['critical'], 'h%d %s' % (number, item), 'chk:%s' % item, 'alert %s' % item, 'message %s' % item] in problems
        assert ['chk:%s' % item, BADGES['critical'], item, '', 'message %s' % item] in checks
        assert [item, BADGES['ok'], '1', '2', item] in checks
    lines = markdown.splitlines()
    assert '- k0 &lt;script&gt;alert(1)&lt;/script&gt;: v &lt;script&gt;alert(1)&lt;/script&gt;' in lines
    assert '- k1 a\\|b: v a\\|b' in lines
    assert '- k3 \\*\\_\\[\\]\\\\: v \\*\\_\\[\\]\\\\' in lines
    assert '### h2 run \\`rm -rf /\\` now: %s' % BADGES['critical'] in lines


# --------------------------------------------------------------------------- matrix


def test_matrix_groups_prefixed_checks():
    report = matrix_report()
    assert matrix_columns(report) == [('disk', [('disk:/var', '/var'), ('disk:/', '/')]), (None, [('load', 'load')])]
    page = render(report, 'html')
    header = page.split('<table class="matrix"><thead>', 1)[1].split('</thead>', 1)[0]
    assert header == ('<tr>\n<th class="host" rowspan="2">Host</th>\n<th colspan="2">disk</th>\n<th rowspan="2">load</th>\n</tr>\n'
                      '<tr class="sub">\n<th title="disk:/var">/var</th>\n<th title="disk:/">/</th>\n</tr>\n')


def test_matrix_without_prefixes_has_one_header_row():
    report = build_report('daily', STARTED, FINISHED, {'a': [make_check('cpu', 'ok', 1, 2, 'm'), make_check('load', 'ok', 1, 2, 'm')]})
    page = render(report, 'html')
    assert '<tr class="sub">' not in page and 'rowspan' not in page
    assert '<th class="host">Host</th>\n<th>cpu</th>\n<th>load</th>\n</tr>\n</thead>' in page


def test_matrix_cells_missing_and_worst_of_duplicates():
    rows = matrix_rows(render(matrix_report(), 'html'))
    assert list(rows) == ['a', 'b']
    assert rows['a'] == [
        ('s-ok', 'OK: var ok', '<span class="v">41 %</span><span class="t">limit 80 %</span>'),
        ('s-ok', 'OK: root ok', '<span class="v">37 %</span><span class="t">limit 80 %</span>'),
        ('s-critical', 'CRITICAL: load way too high', '<span class="v">9.5</span><span class="t">limit 4</span>'),
    ]
    assert rows['b'] == [
        ('s-warning', 'WARNING: var full', '<span class="v">83.1 %</span><span class="t">limit 80 %</span>'),
        ('s-missing', 'not checked on this host', '&ndash;'),
        ('s-ok', 'OK: load fine', '<span class="v">0.5</span><span class="t">limit 4</span>'),
    ]


def test_matrix_duplicates_keep_the_first_of_equally_bad_checks():
    report = build_report('daily', STARTED, FINISHED, {'a': [make_check('x', 'warning', 1, None, 'first'),
                                                             make_check('x', 'warning', 2, None, 'second')]})
    assert matrix_rows(render(report, 'html'))['a'] == [('s-warning', 'WARNING: first', '<span class="v">1</span>')]


# --------------------------------------------------------------------------- overriding


@pytest.mark.parametrize('kind, other', [('md', 'html'), ('html', 'md')])
def test_override_one_template_keeps_the_other_builtin(tmp_path, kind, other):
    report = matrix_report()
    builtin = render_all(report)
    (tmp_path / TEMPLATE_NAMES[kind]).write_text('custom {{ report.runbook }}: {{ report.status|badge }}, '
                                                 '{{ report.hosts|length }} hosts, {{ "<b>" }}\n', encoding='utf-8')
    out = render_all(report, str(tmp_path))
    escaped = '&lt;b&gt;' if kind == 'html' else '<b>'
    assert out[kind] == 'custom daily: %s, 2 hosts, %s\n' % (BADGES['critical'], escaped)
    assert out[other] == builtin[other]
    assert render(report, kind, tmp_path) == out[kind]  # a pathlib.Path works too


def test_empty_templates_dir_means_builtins(tmp_path, monkeypatch):
    (tmp_path / 'report.md.j2').write_text('from the working directory\n', encoding='utf-8')
    monkeypatch.chdir(tmp_path)
    report = matrix_report()
    assert render_all(report, '') == render_all(report, None) == render_all(report)
    assert render(report, 'md').startswith('# daily runbook report\n')


def test_override_may_use_every_helper(tmp_path):
    (tmp_path / 'report.md.j2').write_text(
        '{{ report.duration_s|format_duration }}|{{ 83.14|format_value("%") }}|{{ "a|b"|md }}|{{ rank("warning") }}|'
        '{{ matrix_columns(report)|length }}|{{ worst_checks(report.hosts.a.checks).load.message }}|{{ BADGES.ok }}\n',
        encoding='utf-8')
    assert render(matrix_report(), 'md', str(tmp_path)) == '7.2 s|83.1 %|a\\|b|1|2|load way too high|' + BADGES['ok'] + '\n'


def test_missing_templates_dir_raises(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(AnsibleError, match='report templates directory %s does not exist' % re.escape(str(missing))):
        render_all(matrix_report(), str(missing))
    afile = tmp_path / 'report.md.j2'
    afile.write_text('x\n', encoding='utf-8')
    with pytest.raises(AnsibleError, match='is not a directory'):
        render(matrix_report(), 'md', str(afile))


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / 'report.md.j2'
    path.write_text('# {{ report.runbook }}\n\n{% if report.problems %}\nunclosed\n', encoding='utf-8')
    with pytest.raises(AnsibleError) as caught:
        render_all(matrix_report(), str(tmp_path))
    message = str(caught.value)
    assert message.startswith('syntax error in report template %s line ' % path)
    assert "Unexpected end of template" in message and "'endif'" in message


def test_undefined_attribute_names_file_line_and_name(tmp_path):
    path = tmp_path / 'report.html.j2'
    path.write_text('<p>{{ report.runbook }}</p>\n<p>{{ report.hostz }}</p>\n', encoding='utf-8')
    with pytest.raises(AnsibleError) as caught:
        render(matrix_report(), 'html', str(tmp_path))
    assert str(caught.value) == "error rendering report template %s line 2: 'dict object' has no attribute 'hostz'" % path


def test_undefined_variable_names_file_and_line(tmp_path):
    path = tmp_path / 'report.md.j2'
    path.write_text('a\nb\n{{ reprot.status }}\n', encoding='utf-8')
    with pytest.raises(AnsibleError, match=r"%s line 3: 'reprot' is undefined" % re.escape(str(path))):
        render(matrix_report(), 'md', str(tmp_path))


def test_exception_in_user_template_names_file_and_line(tmp_path):
    path = tmp_path / 'report.md.j2'
    path.write_text('{% for host, entry in report.hosts.items() %}\n{{ (entry.status ~ "?")|badge }}\n{% endfor %}\n', encoding='utf-8')
    with pytest.raises(AnsibleError) as caught:
        render(matrix_report(), 'md', str(tmp_path))
    assert str(caught.value).startswith('error rendering report template %s line 2: ValueError: no badge for status ' % path)


def test_error_in_included_template_names_that_file(tmp_path):
    (tmp_path / 'report.md.j2').write_text('top\n{% include "part.j2" %}\n', encoding='utf-8')
    part = tmp_path / 'part.j2'
    part.write_text('one\ntwo\n{{ 1 // 0 }}\n', encoding='utf-8')
    with pytest.raises(AnsibleError, match=r'%s line 3: ZeroDivisionError' % re.escape(str(part))):
        render(matrix_report(), 'md', str(tmp_path))
    part.write_text('{% for %}\n', encoding='utf-8')
    with pytest.raises(AnsibleError, match=r'syntax error in report template %s line 1' % re.escape(str(part))):
        render(matrix_report(), 'md', str(tmp_path))


def test_malformed_report_fails_in_the_builtin_template():
    report = build_report('daily', STARTED, FINISHED, {'a': [make_check('cpu', 'ok', 1, 2, 'm')]})
    del report['hosts']['a']['checks'][0]['message']
    with pytest.raises(AnsibleError) as caught:
        render(report, 'html')
    message = str(caught.value)
    assert message.startswith('error rendering report template %s line ' % os.path.join(BUILTIN_TEMPLATES_DIR, 'report.html.j2'))
    assert message.endswith("'dict object' has no attribute 'message'")
