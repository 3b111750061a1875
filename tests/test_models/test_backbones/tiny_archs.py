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
    'PoolFormerV2': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                                   depths=[1, 1, 2, 1])),
    'IdentityFormer': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                                     depths=[1, 1, 2, 1])),
    # windows 4 and 2 (not the official 14 and 7): the windowed path with
    # partial border windows is exercised at the small test sizes
    'RandFormer': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                                 depths=[1, 1, 2, 1],
                                 random_windows=[None, None, 4, 2])),
    'ConvFormer': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                                 depths=[1, 1, 2, 1])),
    'CAFormer': dict(arch=dict(embed_dims=[8, 16, 32, 64],
                               depths=[1, 1, 2, 1], head_dim=16)),
    'CycleMLP': dict(arch=dict(embed_dims=[8, 16, 24, 32],
                               depths=[1, 1, 2, 1])),
}

#: Tiny archs of the backbones that are not 4-stage MetaFormers (PiT's three
#: stages, the single-scale MLP-Mixer and ResMLP trunks), for test_pit.py
#: and the training matrix.
OTHER_TINY_ARCHS = {
    'PiT': dict(arch=dict(embed_dims=[8, 16, 32], depths=[1, 2, 1],
                          num_heads=[1, 2, 4])),
    'MLPMixer': dict(arch=dict(embed_dims=16, depths=3, tokens_mlp_dim=8,
                               window=4)),
    'ResMLP': dict(arch=dict(embed_dims=16, depths=3, window=4)),
}

#: Every registered backbone.
ALL_TINY_ARCHS = dict(TINY_ARCHS, **OTHER_TINY_ARCHS)
