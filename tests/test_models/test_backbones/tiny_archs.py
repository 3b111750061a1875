"""Tiny architectures of every registered backbone, for the generic
behaviour tests in ``test_common.py``: fast to build and run on 2 cores.

Each entry: backbone class name -> keyword arguments for the constructor
(at least ``arch``). Family engineers add their backbones here.
"""
TINY_ARCHS = {
    'PoolFormer': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                                 depths=[1, 1, 2, 1])),
    'ResT': dict(arch=dict(embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                           num_heads=[1, 2, 2, 2])),
    'ResTV2': dict(arch=dict(embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                             num_heads=[1, 2, 2, 2])),
}
