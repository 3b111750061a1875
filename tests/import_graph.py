"""The module-level import graph of this package, read from the sources
(``ast``; imports inside functions, which run later, are not edges), and
its cycles; and the modules a fresh interpreter has after an import."""
import ast
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Set

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def module_files(package: str = 'mmmetaformer') -> Dict[str, str]:
    """``{module name: file}`` of every module of ``package`` (where it is
    imported from: the repository, or an installed copy)."""
    root = importlib.util.find_spec(package).submodule_search_locations[0]
    top = osp.dirname(root)
    result = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith('.py'):
                continue
            rel = osp.relpath(osp.join(directory, name), top)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            result['.'.join(parts)] = osp.join(directory, name)
    return result


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module
    base = module.split('.')
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return '.'.join(base + ([node.module] if node.module else []))


def import_graph(package: str = 'mmmetaformer') -> Dict[str, Set[str]]:
    """``{module: modules of the package it imports at module level}``
    (``from a import b`` counts ``a.b`` when that is a module, else
    ``a``)."""
    files = module_files(package)
    graph = {}
    for module, path in files.items():
        is_package = path.endswith('__init__.py')
        with open(path) as f:
            tree = ast.parse(f.read())
        edges = set()
        for node in tree.body:  # module level only
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, is_package)
                names = [f'{base}.{a.name}' if f'{base}.{a.name}' in files
                         else base for a in node.names]
            else:
                continue
            edges |= {name for name in names if name in files}
        graph[module] = edges - {module}
    return graph


def find_cycle(graph: Dict[str, Set[str]],
               nodes: Set[str]) -> Optional[List[str]]:
    """A cycle of ``graph`` restricted to ``nodes``, or None."""
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for succ in sorted(graph.get(node, ()) & nodes):
            if state.get(succ) == 1:
                return path[path.index(succ):] + [succ]
            if succ not in state:
                found = visit(succ)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(nodes):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def modules_after_import(module: str) -> Set[str]:
    """The names in ``sys.modules`` of a fresh interpreter after
    ``import <module>``."""
    code = (f'import json, sys; import {module}; '
            'print(json.dumps(sorted(sys.modules)))')
    proc = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))
