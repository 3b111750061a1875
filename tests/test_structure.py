"""The code's shape: module and function sizes, and no import cycle.

* no module of the package over ``MAX_MODULE_LINES`` lines;
* no function of the package or of ``tools/`` over ``MAX_FUNCTION_LINES``
  lines (from ``def`` to its last line, docstring included);
* no import cycle between the package's modules (every ``import`` statement,
  including those inside functions, is an edge: a cycle hidden in a
  function still ties the modules together);
* every module of the package imports alone in a fresh process (the
  third-party libraries already imported, so that each check costs only the
  package's own import).

Run as a script to print the report (sizes and the longest functions):
``python tests/test_structure.py``.
"""
import ast
import importlib
import multiprocessing
import os
import os.path as osp
import subprocess
import sys
import traceback

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(REPO, 'mmmetaformer')
TOOLS = osp.join(REPO, 'tools')
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def python_files(root: str) -> list:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        out += [osp.join(folder, f) for f in sorted(files)
                if f.endswith('.py')]
    return out


def module_name(path: str) -> str:
    rel = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def long_functions(paths: list, limit: int = MAX_FUNCTION_LINES) -> list:
    """``(lines, 'path:line name')`` of every function over ``limit``."""
    out = []
    for path in paths:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out.append((lines, f'{osp.relpath(path, REPO)}:'
                                f'{node.lineno} {node.name}'))
    return sorted(out, reverse=True)


def long_modules(paths: list, limit: int = MAX_MODULE_LINES) -> list:
    out = []
    for path in paths:
        with open(path) as f:
            lines = sum(1 for _ in f)
        if lines > limit:
            out.append((lines, osp.relpath(path, REPO)))
    return sorted(out, reverse=True)


def import_graph(paths: list) -> dict:
    """module -> the package's modules it imports (by any statement)."""
    modules = {module_name(p): p for p in paths}
    graph = {}
    for name, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        is_package = path.endswith('__init__.py')
        edges = set()
        for node in ast.walk(tree):
            for target in resolve(imported(node, name, is_package),
                                  modules):
                if target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def imported(node, name: str, is_package: bool) -> list:
    """``(module, names)`` pairs of an import statement in module ``name``:
    ``import a.b`` -> ``[('a.b', [])]``, ``from a import b, c`` ->
    ``[('a', ['b', 'c'])]`` (relative imports made absolute)."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ''
    if node.level:
        parts = name.split('.')
        parts = parts if is_package else parts[:-1]
        parts = parts[:len(parts) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
    return [(base, [alias.name for alias in node.names])]


def resolve(pairs: list, modules) -> set:
    """The package's modules loaded: ``from a import b`` loads ``a.b`` when
    that is a module, else takes ``b`` from ``a``."""
    out = set()
    for base, names in pairs:
        targets = [f'{base}.{n}' for n in names if f'{base}.{n}' in modules]
        if len(targets) < len(names) or not names:
            targets.append(base)
        out.update(t for t in targets if t in modules)
    return out


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module
    (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _import_alone(name: str, queue) -> None:
    try:
        importlib.import_module(name)
        queue.put((name, None))
    except BaseException:  # noqa: B902  (reported to the parent)
        queue.put((name, traceback.format_exc(limit=3)))


# ------------------------------------------------------------------- tests
def test_no_module_over_the_limit():
    assert long_modules(python_files(PACKAGE)) == []


def test_no_function_over_the_limit():
    paths = python_files(PACKAGE) + python_files(TOOLS)
    assert long_functions(paths) == []


def test_no_import_cycle():
    assert cycles(import_graph(python_files(PACKAGE))) == []


def test_the_checks_find_what_they_look_for(tmp_path):
    """The scanners on made-up code: a 61-line function, a 3-module cycle
    through a function-level import and a relative one."""
    body = ''.join(f'    x = {i}\n' for i in range(60))
    path = tmp_path / 'long.py'
    path.write_text(f'def f():\n{body}\n\ndef g():\n    return 1\n')
    assert [n for n, _ in long_functions([str(path)])] == [61]
    assert long_modules([str(path)], limit=60) == [
        (65, osp.relpath(str(path), REPO))]
    tree = ast.parse('from . import b\ndef f():\n    from .c import x\n'
                     'from pkg import VERSION\n')
    pairs = [p for node in ast.walk(tree)
             for p in imported(node, 'pkg.a', False)]
    assert resolve(pairs, {'pkg', 'pkg.a', 'pkg.b', 'pkg.c'}) == {
        'pkg', 'pkg.b', 'pkg.c'}
    assert resolve(pairs[:1], {'pkg', 'pkg.b'}) == {'pkg.b'}
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}, 'e': set()}
    assert cycles(graph) == [['a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def import_each_alone() -> list:
    """Import every module of the package in its own forked process, the
    third-party libraries imported once before (run in a fresh
    interpreter: ``python tests/test_structure.py --import-each``)."""
    for heavy in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg',
                  'mmpretrain'):
        try:
            importlib.import_module(heavy)
        except ImportError:
            pass
    assert not any(m.startswith('mmmetaformer') for m in sys.modules)
    context = multiprocessing.get_context('fork')
    failures = []
    for path in python_files(PACKAGE):
        queue = context.Queue()
        process = context.Process(target=_import_alone,
                                  args=(module_name(path), queue))
        process.start()
        name, error = queue.get(timeout=120)
        process.join()
        if error:
            failures.append(f'{name}:\n{error}')
    return failures


@pytest.mark.skipif('fork' not in multiprocessing.get_all_start_methods(),
                    reason='needs fork')
def test_every_module_imports_alone():
    out = subprocess.run([sys.executable, __file__, '--import-each'],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert 'imported alone:' in out.stdout


if __name__ == '__main__':
    if sys.argv[1:] == ['--import-each']:
        sys.path.insert(0, REPO)
        errors = import_each_alone()
        print('\n'.join(errors))
        print('imported alone:', len(python_files(PACKAGE)) - len(errors),
              'of', len(python_files(PACKAGE)))
        sys.exit(1 if errors else 0)
    print('modules over', MAX_MODULE_LINES, 'lines:')
    for lines, path in long_modules(python_files(PACKAGE)):
        print(f'  {lines:5d} {path}')
    print('functions over', MAX_FUNCTION_LINES, 'lines:')
    for lines, where in long_functions(python_files(PACKAGE) +
                                       python_files(TOOLS)):
        print(f'  {lines:5d} {where}')
    print('import cycles:', cycles(import_graph(python_files(PACKAGE))))
