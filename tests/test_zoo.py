"""The model zoo metafiles and the generator of docs/model_zoo.md
(mmmetaformer.zoo, command line tools/model_zoo.py)."""
import copy
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import yaml

from mmmetaformer import convert
from mmmetaformer import zoo as model_zoo

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _spec_dir():
    """``$MMMETAFORMER_SPEC``, else the repository's copy of the spec pages
    the numbers come from (``tests/data/spec``, checked against the
    workplace's shared/spec in tests/test_reference_data.py)."""
    return os.environ.get('MMMETAFORMER_SPEC') or osp.join(
        REPO, 'tests', 'data', 'spec')


def _spec_numbers():
    """(row, protocol-or-None, metric, value) for every number in the
    spec's published_numbers.md and the third-party PiT numbers of
    pit_mixer_resmlp.md, parsed from their Markdown tables."""
    lines = []
    for name in ('published_numbers.md', 'pit_mixer_resmlp.md'):
        with open(osp.join(_spec_dir(), name)) as f:
            lines += f.read().splitlines()
    numbers = set()
    det = {'RetinaNet': 'retinanet', 'Mask R-CNN': 'mask_rcnn'}
    rest_arch = {'T': 'tiny', 'S': 'small', 'B': 'base'}
    for line in lines:
        m = re.match(r'\| (RetinaNet|Mask R-CNN) PoolFormer-(S\d+) \| '
                     r'([\d.]+) \| ([\d.]+|-) \|', line)
        if m:
            row = f'{det[m[1]]}_poolformer_{m[2].lower()}'
            numbers.add((row, 'coco-1333x800', 'box AP', float(m[3])))
            if m[4] != '-':
                numbers.add((row, 'coco-1333x800', 'mask AP', float(m[4])))
            continue
        m = re.match(r'\| PoolFormer-([SM]\d+) \| ([\d.]+) \| `', line)
        if m:
            numbers.add((f'semfpn_poolformer_{m[1].lower()}',
                         'ade-align-2048x512', 'mIoU', float(m[2])))
            continue
        m = re.match(r'\| PoolFormer-([SM]\d+) \| ([\d.]+) / ([\d.]+) \| '
                     r'([\d.]+) / ([\d.]+) / ([\d.]+) / ([\d.]+) \|', line)
        if m:
            row = f'semfpn_poolformer_{m[1].lower()}_mmseg'
            v = [float(x) for x in m.groups()[1:]]
            # mmseg 1.x: mIoU / mIoU*; 0.x: mIoU / ms+flip / mIoU* / mIoU*
            # ms+flip (* = AlignResize-equivalent test resize).
            assert v[1] == v[4], line  # both READMEs give the same mIoU*
            numbers |= {(row, 'ade-resize-2048x512', 'mIoU', v[0]),
                        (row, 'ade-align-2048x512', 'mIoU', v[1]),
                        (row, 'ade-resize-2048x512', 'mIoU', v[2]),
                        (row, 'ade-resize-2048x512-msflip', 'mIoU', v[3]),
                        (row, 'ade-align-2048x512-msflip', 'mIoU', v[5])}
            continue
        m = re.match(r'\| (RetinaNet|Mask R-CNN) ResTv([12])-([STB])-FPN \| '
                     r'(1x|3x) \| ([\d.]+) \| ([\d.]+|-) \|', line)
        if m:
            arch = rest_arch[m[3]]
            row = (f'{det[m[1]]}_rest_{arch}' if m[2] == '1' else
                   f'{det[m[1]]}_3x_restv2_{arch}')
            numbers.add((row, 'coco-1333x800', 'box AP', float(m[5])))
            if m[6] != '-':
                numbers.add((row, 'coco-1333x800', 'mask AP', float(m[6])))
            continue
        m = re.match(r'\| ResTv2-([TSB]) \| ([\d.]+) \|', line)
        if m:
            numbers.add((f'upernet_restv2_{rest_arch[m[1]]}',
                         'ade-align-2048x512-msflip', 'mIoU', float(m[2])))
            continue
        m = re.match(r'\| PiT-S (?:\(vs ViT-S [\d.]+\) )?\| (COCO[^|]*'
                     r'Deformable DETR|ADE20K val, UperNet 160k)[^|]*\| '
                     r'\*\*([\d.]+)\*\*', line)
        if m:
            if m[1].startswith('COCO'):
                numbers.add(('deformable_detr_pit_s', None, 'box AP',
                             float(m[2])))
            else:
                numbers.add(('upernet_pit_s', None, 'mIoU', float(m[2])))
            continue
        m = re.match(r'\s*\| (ConvFormer|CAFormer)-S18 \| ([\d.]+) \|', line)
        if m:
            numbers.add((f'upernet_{m[1].lower()}_s18_polynext', None, 'mIoU',
                         float(m[2])))
    return numbers


def _zoo_numbers(zoo):
    numbers = set()
    for name, model in model_zoo.rows(zoo).items():
        for result in model['Results']:
            for metric, value in result['Metrics'].items():
                if value is not None:
                    numbers.add((name, result['Test Protocol'], metric,
                                 float(value)))
    return numbers


def test_every_published_number_is_in_the_zoo_and_nothing_else():
    spec = _spec_numbers()
    # 6 PoolFormer COCO rows (9 numbers), 5 official ADE20K, 5 x 5 mmseg
    # values, 7 ResT COCO rows (12 numbers), 3 ResTv2 UperNet, 2 third-party
    # MetaFormer, 2 third-party PiT-S.
    assert len(spec) == 9 + 5 + 25 + 12 + 3 + 2 + 2
    zoo = _zoo_numbers(model_zoo.load_zoo())
    assert spec - zoo == set(), 'published numbers missing from the zoo'
    assert zoo - spec == set(), 'zoo numbers that the spec does not publish'


def test_rows_without_a_retrieved_number_say_why():
    table = model_zoo.rows()
    cyclemlp = [m for m in table.values() if m['In Collection'] == 'CycleMLP']
    assert len(cyclemlp) == 15
    for model in cyclemlp:
        for result in model['Results']:
            assert all(v is None for v in result['Metrics'].values())
            assert result['Status'].startswith(
                model_zoo.STATUS_NOT_RETRIEVED + ': ')
    zoo = model_zoo.load_zoo()
    baselines = zoo['metaformer_baselines']
    names = {c['Name'] for c in baselines['Collections']}
    assert names == {'IdentityFormer', 'RandFormer', 'PoolFormerV2',
                     'ConvFormer', 'CAFormer'}
    for collection in baselines['Collections']:
        assert 'No official dense-prediction' in collection['Notes']
    # no official numbers: third-party ones, or none (not retrieved)
    for result in (r for m in baselines['Models'] for r in m['Results']):
        if result['Status'] != 'third-party':
            assert result['Status'].startswith(
                model_zoo.STATUS_NOT_RETRIEVED + ': ')
            assert all(v is None for v in result['Metrics'].values())


def test_configs_and_converters_of_rows_exist():
    for name, model in model_zoo.rows().items():
        if model['Config'] is not None:
            assert osp.isfile(osp.join(REPO, model['Config'])), (
                name, model['Config'])
        if model['Weights Format'] is not None:
            script = convert.CONVERTER_SCRIPTS[model['Weights Format']]
            assert osp.isfile(osp.join(REPO, script)), (name, script)
            assert model.get('Converter') in (None, script), name


def test_zoo_page_renders_the_published_values():
    """Spot checks of docs/model_zoo.md, values as published (that the page
    is current is checked in tests/test_docs.py)."""
    with open(model_zoo.ZOO_PAGE) as f:
        page = f.read()
    assert re.search(r'\| `semfpn_poolformer_s36` \| PoolFormer-S36 \| 42\.0 '
                     r'\| `ade-align-2048x512` \|', page)
    assert re.search(r'\| `mask_rcnn_3x_restv2_base` \| ResTv2-Base \| '
                     r'48\.7 \| 43\.9 \|', page)
    assert '| `semfpn_cyclemlp_b3` | CycleMLP-B3 | n/r |' in page


def test_links_are_relative_to_the_page():
    """Config and pipeline-test links resolve from the page's directory."""
    zoo = model_zoo.load_zoo()
    for page_dir, prefix in (('docs', '../'), ('.', ''), ('a/b', '../../')):
        tables = model_zoo.render_tables(zoo, page_dir)
        assert (f'[retinanet_poolformer_s12.py]({prefix}configs/'
                'retinanet_poolformer_s12.py)') in tables
        assert (f'proven: [test_retinanet_poolformer_s12]({prefix}tests/'
                'test_pipelines/test_official_pipelines.py)') in tables


def test_check_detects_a_stale_page(tmp_path, capsys):
    page = tmp_path / 'model_zoo.md'
    page.write_text(f'# x\n{model_zoo.START_MARKER}\nold\n'
                    f'{model_zoo.END_MARKER}\ntail\n')
    assert model_zoo.update_page(str(page), check=True) == 1
    assert 'out of date' in capsys.readouterr().err
    assert model_zoo.update_page(str(page)) == 0
    text = page.read_text()
    assert 'old' not in text and text.endswith(
        f'{model_zoo.END_MARKER}\ntail\n')
    assert model_zoo.update_page(str(page), check=True) == 0
    page.write_text('# no markers\n')
    with pytest.raises(model_zoo.ZooError,
                       match='model_zoo.md must contain .*model-zoo:start'):
        model_zoo.update_page(str(page))


def _write_zoo(tmp_path, mutate):
    src = osp.join(model_zoo.METAFILE_DIR, 'poolformer.yml')
    with open(src) as f:
        data = yaml.safe_load(f)
    data = copy.deepcopy(data)
    mutate(data['Models'][0])
    (tmp_path / 'poolformer.yml').write_text(yaml.safe_dump(data))
    return str(tmp_path)


@pytest.mark.parametrize('mutate, message', [
    (lambda m: m['Results'][0]['Metrics'].update({'box AP': None}),
     'null value needs'),
    (lambda m: m['Results'][0].update({'Test Protocol': 'coco-800'}),
     'Test Protocol must be'),
    (lambda m: m['Results'][0].update({'Status': 'reproduced'}),
     'Status must be'),
    (lambda m: m.update({'Weights Format': 'mmdet1'}), 'Weights Format'),
    (lambda m: m.update({'Config': 'retinanet.py'}), 'Config must be'),
    (lambda m: m.update({'Extra': 1}), 'unknown keys'),
    (lambda m: m.update({'Converter': 'tools/model_converters/'
                         'poolformer_mmdet2_to_mmdet3.py'}),
     "Converter must be 'tools/model_converters/mmdet2_to_mmdet3.py'"),
    (lambda m: m['Results'][0].update({'Pipeline Test': 'test_x'}),
     'Pipeline Test must be'),
    (lambda m: m['Results'][0].update(
        {'Pipeline Test': 'tests/test_zoo.py::test_nothing'}),
     'Pipeline Test test_nothing is not defined'),
])
def test_invalid_metafiles_are_rejected(tmp_path, mutate, message):
    with pytest.raises(model_zoo.ZooError, match=message):
        model_zoo.load_zoo(_write_zoo(tmp_path, mutate))


def test_find_row_names_valid_rows():
    assert model_zoo.find_row('retinanet_poolformer_s12')['Config'] == (
        'configs/retinanet_poolformer_s12.py')
    with pytest.raises(ValueError, match='valid rows are: .*semfpn_'):
        model_zoo.find_row('retinanet_poolformer_s99')


def test_model_zoo_command_line(tmp_path):
    """tools/model_zoo.py is a thin command line over mmmetaformer.zoo,
    runnable from any directory."""
    tool = osp.join(REPO, 'tools', 'model_zoo.py')
    result = subprocess.run([sys.executable, tool, '--check'], cwd='/',
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'up to date' in result.stdout
    result = subprocess.run([sys.executable, tool, '--list'], cwd='/',
                            capture_output=True, text=True, timeout=120)
    assert 'retinanet_poolformer_s12: box AP 36.2 [coco-1333x800]' in \
        result.stdout.splitlines()
