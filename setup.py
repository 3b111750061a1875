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
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.9',
    # torch and mmcv are deliberately not install_requires: see
    # requirements/runtime.txt and tools/setup_env.sh.
    install_requires=['mmengine>=0.10.0,<1.0'],
    license='Apache License 2.0',
)
