"""The public names the README documented before it moved to docs/ (the
1039-line README.md of commit 7b9f302) keep working: module paths and names,
registered type names, tool scripts and their options, configs and
environment variables. Modules moved later keep re-exporting from these
paths; this list is the guard. Read from that README by hand: extend it when
the documentation promises a new name, never shorten it without a
deprecation."""
import importlib
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: ``module: names`` written in the README (``from mmmetaformer.x import y``,
#: ``mmmetaformer.x.y``, and the names the "Development" section tells
#: contributors to use).
MODULE_NAMES = {
    'mmmetaformer': ['__version__'],
    'mmmetaformer.checkpoint': ['load_checkpoint_file',
                                'runner_safe_globals'],
    'mmmetaformer.compile': ['compile_backbone', 'compile_for_varying_sizes'],
    'mmmetaformer.convert': ['check_load_from'],
    'mmmetaformer.identify': [],
    'mmmetaformer.keymap': [],
    'mmmetaformer.launch': [
        'enable_safe_runner_checkpoints', 'restore_runner_checkpoint_loaders',
        'configure_cpu_threads'
    ],
    'mmmetaformer.zoo': [],
    'mmmetaformer.registry': [
        'MODELS', 'HOOKS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS'
    ],
    'mmmetaformer.engine': [
        'AtomicCheckpointHook', 'CPUAmpOptimWrapper',
        'LayerDecayOptimWrapperConstructor'
    ],
    'mmmetaformer.models.backbones': [
        'PoolFormer', 'PoolFormerV2', 'IdentityFormer', 'RandFormer',
        'ConvFormer', 'CAFormer', 'ResT', 'ResTV2', 'CycleMLP', 'PiT',
        'MLPMixer', 'ResMLP', 'MetaFormerBackbone', 'ArchKey'
    ],
    'mmmetaformer.models.backbones.base': ['MetaFormerBackbone', 'ArchKey'],
    'mmmetaformer.models.backbones.poolformer': ['PoolFormer'],
    'mmmetaformer.models.backbones.metaformer_baselines': [
        'MetaFormerBaseline', 'PoolFormerV2', 'IdentityFormer', 'RandFormer',
        'ConvFormer', 'CAFormer'
    ],
    'mmmetaformer.models.backbones.rest': ['ResT', 'ResTV2'],
    'mmmetaformer.models.backbones.cyclemlp': ['CycleMLP'],
    'mmmetaformer.models.layers': [
        'Pooling', 'SepConv', 'WindowTokenMixing', 'GroupNorm1'
    ],
    'mmmetaformer.models.layers.mixers': ['Pooling', 'SepConv'],
    'mmmetaformer.models.layers.emsa': [],
    'mmmetaformer.models.layers.cycle': [],
    'mmmetaformer.models.layers.norms': ['GroupNorm1'],
    'mmmetaformer.models.layers.fastpath': ['MEASURED'],
    'mmmetaformer.testing.parity': [],
    'mmmetaformer.testing.rest_official': [],
    'mmmetaformer.testing.mlp_official': [],
}

FAMILIES = [
    'PoolFormer', 'PoolFormerV2', 'IdentityFormer', 'RandFormer',
    'ConvFormer', 'CAFormer', 'ResT', 'ResTV2', 'CycleMLP', 'PiT', 'MLPMixer',
    'ResMLP'
]
#: ``<Family>.imagenet_url(arch)`` as documented (MetaFormer baselines,
#: PiT, MLP-Mixer, ResMLP), with an arch of each.
IMAGENET_URL_ARCHS = {
    'PoolFormerV2': 's12', 'IdentityFormer': 's12', 'RandFormer': 's12',
    'ConvFormer': 's18', 'CAFormer': 's18', 'PiT': 's', 'MLPMixer': 'b16',
    'ResMLP': 's12'
}
#: What every backbone exposes, and what a new family sets (Development).
BACKBONE_ATTRIBUTES = [
    'out_channels', 'out_strides', 'get_layer_depth', 'load_pretrained',
    'convert_checkpoint', 'build_token_mixer', 'arch_settings',
    'default_arch', 'arch_keys', 'block_norm', 'mlp_act', 'mlp_bias',
    'layer_scale_key', 'res_scale_key', 'init_rule', 'default_out_norm',
    'official_key_rules', 'checkpoint_formats'
]
#: Registered names in configs: (mmmetaformer registry, scoped name).
SCOPED_TYPES = [('MODELS', f'mmmetaformer.{name}') for name in FAMILIES] + [
    ('HOOKS', 'mmmetaformer.AtomicCheckpointHook'),
    ('OPTIM_WRAPPERS', 'mmmetaformer.CPUAmpOptimWrapper'),
    ('OPTIM_WRAPPER_CONSTRUCTORS',
     'mmmetaformer.LayerDecayOptimWrapperConstructor'),
]
#: Files the README names as commands or places to edit.
FILES = [
    '.ci/run', 'tools/run_demo.sh', 'tools/run_tests.sh',
    'tools/setup_env.sh', 'tools/min_env_tests.sh',
    'tools/generate_demo_data.py', 'tools/train.py', 'tools/dist_train.sh',
    'tools/test.py', 'tools/reproduce.py', 'tools/model_zoo.py',
    'tools/parity_report.py', 'tools/model_converters/mmdet2_to_mmdet3.py',
    'tools/model_converters/mmseg0_to_mmseg1.py',
    'tools/model_converters/detectron2_to_mmdet3.py',
    'tools/references/generate_pipelines.py',
    'tools/references/setup_official_env.sh',
    'tools/benchmarks/setup_bench.sh', 'tools/benchmarks/speed.py',
    'tools/benchmarks/bf16_check.py', 'tools/benchmarks/cyclemlp_speed.py',
    'tools/benchmarks/rest_size_sweep.py', 'tools/benchmarks/cpu_threads.py',
    'tools/benchmarks/gpu_check.py', 'tools/benchmarks/_stubs/torchvision',
    'tools/benchmarks/results/speed.png', 'requirements/min.txt',
    'configs/_base_/datasets/paths.py',
    'configs/_base_/retinanet_fpn_1x_coco_rest.py',
    'configs/demo/retinanet_poolformer_s12_demo.py',
    'configs/retinanet_poolformer_s12.py', 'configs/mask_rcnn_caformer_s18.py',
    'configs/semfpn_poolformer_s12.py', 'configs/mask_rcnn_rest_small.py',
    'configs/retinanet_rest_small.py', 'configs/deformable_detr_pit_s.py',
    'configs/upernet_pit_s.py', 'configs/metafiles'
]
#: Command-line options the README documents, per tool (``--help`` lists
#: them).
TOOL_OPTIONS = {
    'tools/train.py': [
        '--epochs', '--iters', '--resume', '--allow-partial', '--amp',
        '--compile', '--launcher', '--cfg-options', '--work-dir'
    ],
    'tools/test.py': ['--tta', '--allow-partial'],
    'tools/reproduce.py': ['--checkpoint', '--allow-partial'],
    'tools/model_converters/mmdet2_to_mmdet3.py': ['--family'],
    'tools/model_converters/mmseg0_to_mmseg1.py': ['--family'],
    'tools/model_converters/detectron2_to_mmdet3.py': ['--family'],
    'tools/model_zoo.py': ['--check', '--list'],
    'tools/benchmarks/speed.py': [
        '--cases', '--sizes', '--rounds', '--threads', '--memory',
        '--memory-only', '--compile', '--freezing', '--modes', '--readme',
        '--out-dir'
    ],
    'tools/benchmarks/bf16_check.py': ['--dtype', '--threads'],
    'tools/benchmarks/cyclemlp_speed.py': ['--arch', '--size', '--threads'],
    'tools/benchmarks/gpu_check.py': ['--device', '--compile', '--quick'],
}
#: Environment variables the README documents.
ENV_VARS = [
    'MMMETAFORMER_CACHE', 'MMMETAFORMER_CHECKPOINTS',
    'MMMETAFORMER_COCO_ROOT', 'MMMETAFORMER_ADE_ROOT',
    'MMMETAFORMER_FORCE_SETUP', 'MAX_JOBS', 'DETECTRON2_SRC'
]


@pytest.mark.parametrize('module', sorted(MODULE_NAMES))
def test_module_and_names_import(module):
    mod = importlib.import_module(module)
    missing = [n for n in MODULE_NAMES[module] if not hasattr(mod, n)]
    assert not missing, f'{module} lacks {missing}'


@pytest.mark.parametrize('family', FAMILIES)
def test_backbone_interface(family):
    from mmmetaformer.models import backbones
    cls = getattr(backbones, family)
    missing = [a for a in BACKBONE_ATTRIBUTES if not hasattr(cls, a)]
    assert not missing, f'{family} lacks {missing}'
    if family in IMAGENET_URL_ARCHS:
        url = cls.imagenet_url(IMAGENET_URL_ARCHS[family])
        assert url.startswith('https://'), url


@pytest.mark.parametrize('registry, name', SCOPED_TYPES)
def test_scoped_type_names_resolve(registry, name):
    from mmmetaformer import registry as registries
    cls = getattr(registries, registry).get(name)
    assert cls is not None and cls.__name__ == name.split('.')[-1]


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_plain_names_in_mmdet_and_mmseg(scope):
    pytest.importorskip(scope)
    import mmmetaformer  # noqa: F401  (registers into the libraries)
    registry = importlib.import_module(f'{scope}.registry')
    for name in FAMILIES:
        assert registry.MODELS.get(name) is not None, (scope, name)
    assert registry.OPTIM_WRAPPER_CONSTRUCTORS.get(
        'LayerDecayOptimWrapperConstructor') is not None


@pytest.mark.parametrize('path', FILES)
def test_documented_files_exist(path):
    assert osp.exists(osp.join(REPO, path)), path


_HELP_SCRIPT = """
import contextlib, io, json, runpy, sys
texts = {}
for tool in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [tool, '--help']
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(tool, run_name='__main__')
        except SystemExit as exit:
            code = exit.code
        else:
            code = 'no exit'
    texts[tool] = [code, out.getvalue()]
print(json.dumps(texts))
"""


def test_tool_options():
    """``--help`` of each tool (one interpreter for all, as ``python
    TOOL --help`` runs them) exits 0 and lists the documented options."""
    result = subprocess.run(
        [sys.executable, '-c', _HELP_SCRIPT] + sorted(TOOL_OPTIONS),
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    texts = json.loads(result.stdout.splitlines()[-1])
    problems = {}
    for tool, options in TOOL_OPTIONS.items():
        code, text = texts[tool]
        missing = [o for o in options if o not in text]
        if code not in (0, None) or missing:
            problems[tool] = (code, missing)
    assert not problems, problems


def test_environment_variables_are_read():
    """Each documented variable is still read somewhere in the sources."""
    sources = []
    for root in ('mmmetaformer', 'tools', 'configs'):
        for dirpath, _, names in os.walk(osp.join(REPO, root)):
            sources += [osp.join(dirpath, n) for n in names
                        if n.endswith(('.py', '.sh'))]
    text = ''.join(open(p, encoding='utf-8').read() for p in sources)
    missing = [v for v in ENV_VARS if v not in text]
    assert not missing, missing
