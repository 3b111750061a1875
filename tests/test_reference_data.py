"""The parity data in tests/data/reference is a verbatim copy of the data the
official code produced (the workplace's shared/reference), and tests/data/spec
holds verbatim copies of the spec pages whose published numbers the model-zoo
tests check; when shared/ exists beside the repository, the copies must equal
it file by file."""
import filecmp
import os
import os.path as osp

import pytest

from mmmetaformer.testing import parity

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED = osp.join(osp.dirname(REPO), 'shared', 'reference')
SHARED_SPEC = osp.join(osp.dirname(REPO), 'shared', 'spec')


def test_repository_copy_is_present():
    ref = parity.reference_dir()
    assert ref is not None and osp.isdir(ref)
    names = os.listdir(ref)
    assert 'README.md' in names
    assert sum(n.endswith('.ref.pt') for n in names) >= 18


@pytest.mark.skipif(not osp.isdir(SHARED), reason='no shared/reference beside the repository to compare with')
def test_repository_copy_equals_shared_reference():
    ours = osp.join(REPO, 'tests', 'data', 'reference')
    theirs = sorted(os.listdir(SHARED))
    assert sorted(os.listdir(ours)) == theirs
    _, mismatch, errors = filecmp.cmpfiles(SHARED, ours, theirs, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


@pytest.mark.skipif(not osp.isdir(SHARED_SPEC), reason='no shared/spec beside the repository to compare with')
def test_spec_copies_equal_shared_spec():
    ours = osp.join(REPO, 'tests', 'data', 'spec')
    names = sorted(os.listdir(ours))
    assert names == ['pit_mixer_resmlp.md', 'published_numbers.md']
    _, mismatch, errors = filecmp.cmpfiles(SHARED_SPEC, ours, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)
