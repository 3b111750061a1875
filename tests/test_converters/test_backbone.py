"""mmmetaformer.converters.backbone: the config's backbone class converts
the backbone keys; ``--family`` and a checkpoint of another family are
checked against the config."""
import os.path as osp

import pytest

from mmmetaformer.converters.common import ConversionError
from mmmetaformer.converters.run import run_conversion
from tests.test_converters.helpers import REPO, save
from tests.test_tools import legacy_checkpoints as legacy


def test_family_option_checks_the_config(tmp_path):
    src = save(legacy.poolformer_mmdet2('s12', 'retinanet'),
               tmp_path / 'src.pth')
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    out = str(tmp_path / 'out.pth')
    with pytest.raises(ConversionError,
                       match="--family ResT but the config's backbone is "
                       'PoolFormer'):
        run_conversion(src, config, out, 'mmdet2', family='ResT')
    with pytest.raises(ConversionError, match='valid: .*PoolFormer'):
        run_conversion(src, config, out, 'mmdet2', family='Nope')
    report = run_conversion(src, config, out, 'mmdet2',
                            family='PoolFormer')
    assert report.family == 'PoolFormer' and report.strict


def test_checkpoint_of_another_family_is_named(tmp_path):
    """A PoolFormer detector file given with a ResT config is named as
    such before anything is converted."""
    src = save(legacy.poolformer_mmdet2('s12', 'retinanet'),
               tmp_path / 'src.pth')
    with pytest.raises(ConversionError) as info:
        run_conversion(
            src, osp.join(REPO, 'configs/retinanet_rest_small.py'),
            str(tmp_path / 'out.pth'), 'mmdet2')
    message = str(info.value)
    assert "backbone.* keys are a PoolFormer checkpoint (official key " \
        "names, arch 's12'" in message
    assert "the config's backbone is ResT" in message
