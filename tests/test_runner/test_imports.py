"""The import graph of mmmetaformer.runner, read from the sources (imports
inside functions included): no cycle, an ``__init__`` that imports none of
its modules, and ``pretrained`` free of mmmetaformer.convert (which
imports it)."""
import ast
import os
import os.path as osp

import mmmetaformer.runner

PACKAGE = 'mmmetaformer.runner'
FOLDER = osp.dirname(mmmetaformer.runner.__file__)


def imported_modules(path):
    """Every absolute module name ``path`` imports (``from a import b``
    counts as ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f'{path}: relative import'
            names.add(node.module)
            names.update(f'{node.module}.{a.name}' for a in node.names)
    return names


def runner_graph():
    """module name -> the runner modules it imports."""
    modules = {
        f'{PACKAGE}.{name[:-3]}': osp.join(FOLDER, name)
        for name in os.listdir(FOLDER) if name.endswith('.py')
    }
    return {
        module: sorted(imported_modules(path) & set(modules))
        for module, path in modules.items()
    }


def find_cycle(graph):
    """A list of modules forming a cycle, or None (depth-first search)."""
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        for target in graph[node]:
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target, stack + [target])
                if found:
                    return found
        state[node] = 'done'
        return None

    for node in graph:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    # the check itself, on graphs with and without a cycle
    assert find_cycle({'a': ['b'], 'b': ['c'], 'c': ['a']}) == [
        'a', 'b', 'c', 'a']
    assert find_cycle({'a': ['b', 'c'], 'b': ['c'], 'c': []}) is None


def test_no_import_cycle():
    graph = runner_graph()
    assert len(graph) >= 10, sorted(graph)
    assert find_cycle(graph) is None
    assert graph[f'{PACKAGE}.build']  # the graph is not empty by mistake


def test_package_init_imports_none_of_its_modules():
    assert runner_graph()[f'{PACKAGE}.__init__'] == []


def test_pretrained_does_not_import_convert():
    names = imported_modules(osp.join(FOLDER, 'pretrained.py'))
    assert not [n for n in names if n.startswith('mmmetaformer.convert')]
    assert 'mmmetaformer.registry' in names  # what it does import is seen
