# The official PoolFormer / ResTv2 ADE20K test pipeline (``AlignResize``:
# keep-ratio resize to (2048, 512), then a resize to a multiple of 32) in
# mmseg 1.x terms: Resize + ResizeToMultiple. Bases that use it list this
# file in ``_base_`` and set
# ``test_pipeline = _base_.ade_align_test_pipeline``.
ade_align_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
