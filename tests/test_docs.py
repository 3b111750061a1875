"""The documentation: README.md and docs/*.md.

* every relative link resolves to a file or directory of the repository, and
  every ``#anchor`` to a heading of the linked page (GitHub's anchors: the
  heading text lower-cased, punctuation dropped, spaces as hyphens, ``-1``,
  ``-2``, ... for repeats) or to an explicit ``<a id=...>``;
* every repository path written in a code span (``tools/train.py``) exists,
  so a moved file cannot leave the documentation behind;
* the README stays short (the rest lives in docs/);
* the generated blocks are current (the model-zoo tables of
  docs/model_zoo.md equal what the metafiles give).
"""
import glob
import os.path as osp
import re

import pytest

from mmmetaformer import zoo

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
README_MAX_LINES = 200

_FENCE = re.compile(r'^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$', re.M | re.S)
_INLINE_CODE = re.compile(r'(`+)(.+?)\1', re.S)
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                   r'(?:\s+"[^"]*")?\s*\)')
_REFERENCE = re.compile(r'^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)', re.M)
_HEADING = re.compile(r'^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$', re.M)
_HTML_ID = re.compile(r'<a\s+(?:id|name)="([^"]+)"', re.I)
_SCHEME = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')
#: Top-level entries whose paths in code spans must exist.
_REPO_DIRS = ('mmmetaformer/', 'tools/', 'configs/', 'tests/', 'docs/',
              'requirements/', '.ci/')


def doc_pages():
    """README.md and every page of docs/, as paths."""
    return [osp.join(REPO, 'README.md')] + sorted(
        glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def without_code_blocks(text):
    """``text`` with fenced code blocks blanked (their lines kept empty)."""
    return _FENCE.sub(lambda m: '\n' * m.group(0).count('\n'), text)


def github_anchor(heading, seen):
    """The anchor GitHub gives a heading, counting repeats in ``seen``."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # link text
    text = re.sub(r'<[^>]+>', '', text).replace('`', '')
    slug = re.sub(r'[^\w\- ]', '', text.strip().lower()).replace(' ', '-')
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f'{slug}-{count}'


def anchors(path):
    """Every anchor of a Markdown page."""
    text = without_code_blocks(_read(path))
    seen = {}
    found = {github_anchor(m.group(2), seen) for m in _HEADING.finditer(text)}
    return found | set(_HTML_ID.findall(text))


def link_targets(text):
    """The targets of the inline links, images and reference definitions of
    ``text``, outside code."""
    text = _INLINE_CODE.sub('', without_code_blocks(text))
    return _LINK.findall(text) + _REFERENCE.findall(text)


def broken_links(path, root=REPO):
    """One message per relative link or anchor of ``path`` that does not
    resolve to a file under ``root`` (external links are not fetched)."""
    problems = []
    for target in link_targets(_read(path)):
        if _SCHEME.match(target):
            continue
        file, _, anchor = target.partition('#')
        dest = osp.normpath(osp.join(osp.dirname(path), file)) if file \
            else path
        if not osp.exists(dest):
            problems.append(f'{target}: {file} does not exist')
        elif osp.commonpath([dest, root]) != root:
            problems.append(f'{target}: {file} is outside the repository')
        elif anchor and dest.endswith('.md'):
            if anchor not in anchors(dest):
                problems.append(f'{target}: no heading #{anchor} in '
                                f'{osp.basename(dest)}')
        elif anchor and not re.fullmatch(r'L\d+(-L\d+)?', anchor):
            problems.append(f'{target}: #{anchor} on a file that is not '
                            'Markdown')
    return problems


def missing_code_paths(path, root=REPO):
    """Repository paths in code spans of ``path`` (``tools/train.py``,
    ``configs/_base_/``) that do not exist under ``root``. Spans with
    placeholders (``<arch>``, ``{a,b}``, ``*``, ``...``) or spaces are
    commands or patterns, not paths, and are skipped."""
    text = without_code_blocks(_read(path))
    missing = []
    for _, span in _INLINE_CODE.findall(text):
        span = span.strip()
        if (not span.startswith(_REPO_DIRS) or re.search(r'[\s<>{}*?|]',
                                                          span)
                or '...' in span):
            continue
        if not osp.exists(osp.join(root, span.split('::')[0])):
            missing.append(span)
    return missing


def _page_id(path):
    return osp.relpath(path, REPO)


@pytest.mark.parametrize('page', doc_pages(), ids=_page_id)
def test_links_and_anchors_resolve(page):
    assert broken_links(page) == []


@pytest.mark.parametrize('page', doc_pages(), ids=_page_id)
def test_paths_in_code_spans_exist(page):
    assert missing_code_paths(page) == []


def test_readme_is_short():
    lines = _read(osp.join(REPO, 'README.md')).count('\n')
    assert lines <= README_MAX_LINES, (
        f'README.md has {lines} lines; move details to a page of docs/')


def test_generated_blocks_are_current():
    """The model-zoo tables are generated into docs/model_zoo.md only (a
    stale copy elsewhere would not be updated), and are current."""
    holders = [
        _page_id(p) for p in doc_pages() if zoo.START_MARKER in _read(p)
    ]
    assert holders == [_page_id(zoo.ZOO_PAGE)]
    assert zoo.update_page(check=True) == 0


def test_the_speed_block_has_one_home():
    """tools/benchmarks/speed.py --readme writes its measured tables between
    these markers: they exist once, in docs/speed.md."""
    holders = [
        _page_id(p) for p in doc_pages()
        if '<!-- speed:start -->' in _read(p)
    ]
    assert holders == ['docs/speed.md']
    text = _read(osp.join(REPO, 'docs', 'speed.md'))
    assert text.index('<!-- speed:start -->') < text.index(
        '<!-- speed:end -->')


def test_github_anchor_rules():
    seen = {}
    assert github_anchor('Compatibility fixes (torch 2.13, numpy 2)',
                         seen) == 'compatibility-fixes-torch-213-numpy-2'
    assert github_anchor('PiT, MLP-Mixer, ResMLP',
                         seen) == 'pit-mlp-mixer-resmlp'
    assert github_anchor('`torch.compile` and [links](x.md)',
                         seen) == 'torchcompile-and-links'
    assert github_anchor('On a GPU: not measured yet',
                         seen) == 'on-a-gpu-not-measured-yet'
    assert github_anchor('model_zoo', seen) == 'model_zoo'
    assert [github_anchor('Notes', seen) for _ in range(3)] == [
        'notes', 'notes-1', 'notes-2'
    ]


def test_checker_reports_each_broken_link(tmp_path):
    """The checks can fail: a missing file or image, a missing anchor in
    another page and in the same page, an anchor on a non-Markdown file, a
    link out of the repository and a missing code-span path are each
    reported; valid links, links in code and external links are not."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    (root / 'tools' / 'train.py').write_text('')
    (root / 'other.md').write_text('# Other page\n\n## Part two\n')
    (tmp_path / 'x.md').write_text('# x\n')
    page = root / 'page.md'
    page.write_text(
        '# Page\n\n## A section (v2.0)\n\n'
        '[ok](other.md#part-two) [ok](#a-section-v20) [ok](tools/train.py)'
        ' [ok](tools/train.py#L3) [ok](https://example.com/x#y)\n'
        '[gone](missing.md) [bad anchor](other.md#part-three) '
        '[bad local](#b-section) [file anchor](tools/train.py#main) '
        '[outside](../x.md)\n'
        '![missing image](img/chart.png)\n\n'
        '`[in code](nowhere.md)` `tools/train.py` `tools/test.py`'
        ' `configs/<name>.py`\n\n'
        '```\n[in a block](nowhere.md)\n```\n\n[ref]: gone/ref.md\n')
    assert broken_links(str(page), root=str(root)) == [
        'missing.md: missing.md does not exist',
        'other.md#part-three: no heading #part-three in other.md',
        '#b-section: no heading #b-section in page.md',
        'tools/train.py#main: #main on a file that is not Markdown',
        '../x.md: ../x.md is outside the repository',
        'img/chart.png: img/chart.png does not exist',
        'gone/ref.md: gone/ref.md does not exist',
    ]
    assert missing_code_paths(str(page), root=str(root)) == ['tools/test.py']
