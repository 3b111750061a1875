"""The distribution a user installs with ``pip install .``: the wheel's
contents and declared requirements (built from a copy of the repository, so
the working tree gets no build artefacts)."""
import email
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Not copied: environments, caches, build outputs, local data.
SKIP = ('.git', '.venv*', '__pycache__', '*.egg-info', 'build', 'dist',
        'work_dirs', 'data', '.pytest_cache')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    # The whole repository (tests/, configs/, tools/ included): the wheel
    # must leave out what is there, not merely what is missing.
    src = tmp_path_factory.mktemp('repo') / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    assert (src / 'tests' / '__init__.py').exists()
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '--disable-pip-version-check', '-q',
         '-w', str(out), str(src)], check=True)
    wheels = list(out.glob('mmmetaformer-*.whl'))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        names = zf.namelist()
        metadata_name = next(n for n in names
                             if n.endswith('.dist-info/METADATA'))
        metadata = email.message_from_bytes(zf.read(metadata_name))
    return names, metadata


def test_wheel_holds_only_the_package(wheel):
    names, _ = wheel
    top_level = {name.split('/')[0] for name in names}
    dist_info = {t for t in top_level if t.endswith('.dist-info')}
    assert top_level - dist_info == {'mmmetaformer'}, sorted(top_level)
    assert 'mmmetaformer/models/backbones/poolformer.py' in names
    assert not [n for n in names if re.search(r'(^|/)tests?/', n)
                and not n.startswith('mmmetaformer/testing/')]


def min_pins():
    """``name -> version`` of requirements/min.txt (the tested minimum)."""
    pins = {}
    with open(osp.join(ROOT, 'requirements', 'min.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                name, version = line.split('==')
                pins[name.lower()] = version
    return pins


def test_declared_minimums_are_the_tested_ones(wheel):
    """Each declared lower bound is the version the minimal CI environment
    (requirements/min.txt) installs, and torch is not a requirement (pip
    would pull or swap in a multi-GB CUDA build)."""
    _, metadata = wheel
    requires = metadata.get_all('Requires-Dist')
    pins = min_pins()
    bounds = {}
    for req in requires:
        m = re.fullmatch(r'([A-Za-z0-9_.-]+)\s*\(?([^;)]*)\)?', req.strip())
        assert m, req
        name, spec = m.group(1).lower(), m.group(2)
        lower = re.search(r'>=\s*([0-9][^,\s]*)', spec)
        assert lower, f'{req!r} has no lower bound'
        bounds[name] = lower.group(1)
    assert 'torch' not in bounds
    assert set(bounds) == {'mmengine', 'numpy', 'safetensors'}, requires
    for name, lower in bounds.items():
        tested = pins[name]
        # numpy>=1.26 names the tested 1.26.4's release series; a lower
        # bound would claim an untested version.
        parts = lower.split('.')
        assert tested.split('.')[:len(parts)] == parts, (name, lower, tested)
    python = metadata['Requires-Python']
    assert python == '>=3.10', python
