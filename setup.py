from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def version():
    scope = {}
    with open('mmmetaformer/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmmetaformer',
    version=version(),
    description='MetaFormer-style backbones (PoolFormer, MetaFormer '
    'baselines, ResT, CycleMLP) for mmdet 3.x, mmseg 1.x and mmpretrain',
    long_description=readme(),
    long_description_content_type='text/markdown',
    # Only the package: no top-level ``tests`` (or ``tests.*``) package.
    packages=find_packages(include=('mmmetaformer', 'mmmetaformer.*')),
    # The lower bounds are the versions the second CI environment tests
    # (requirements/min.txt, tools/min_env_tests.sh): Python 3.10, torch
    # 2.1.2, numpy 1.26.4, mmengine 0.10.7, safetensors 0.4.5. The upper ends
    # are requirements/deps.txt and runtime.txt (torch 2.13, numpy 2.4).
    python_requires='>=3.10',
    # torch is deliberately not a requirement (tested: >= 2.1): a torch
    # requirement makes pip pull (or replace the user's torch with) a
    # multi-GB CUDA build; install the torch you want first. mmcv, mmdet,
    # mmseg and mmpretrain are optional: the backbones need none of them.
    install_requires=[
        'mmengine>=0.10.7,<1.0',
        'numpy>=1.26',
        'safetensors>=0.4.5',
    ],
    license='Apache License 2.0',
)
