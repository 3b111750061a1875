"""The import graph of mmmetaformer.runner (read from the sources by
tests/test_structure.py's scanner, imports inside functions included): an
``__init__`` that imports none of its modules, and ``pretrained`` free of
the converters (which import it). No cycle in the whole package is
checked by tests/test_structure.py."""
from tests.test_structure import PACKAGE, import_graph, python_files

RUNNER = 'mmmetaformer.runner'


def runner_graph() -> dict:
    graph = import_graph(python_files(PACKAGE))
    return {name: edges for name, edges in graph.items()
            if name == RUNNER or name.startswith(RUNNER + '.')}


def test_package_init_imports_none_of_its_modules():
    graph = runner_graph()
    assert len(graph) >= 10, sorted(graph)
    assert graph[f'{RUNNER}.build']  # the graph is not empty by mistake
    assert graph[RUNNER] == set()


def test_pretrained_imports_no_converter():
    edges = import_graph(python_files(PACKAGE))[f'{RUNNER}.pretrained']
    assert not [n for n in edges if n.startswith(('mmmetaformer.convert',
                                                  'mmmetaformer.converters'))]
    assert 'mmmetaformer.registry' in edges  # what it does import is seen
