# Tiny Runner config for the distributed-training test
# (tests/test_tools/test_train_tools.py). It asks for SyncBN and NCCL on
# purpose: on a CPU-only torch, tools/train.py must turn them into BN and
# gloo.
custom_imports = dict(
    imports=['tests.test_tools.toy_runner'], allow_failed_imports=False)

model = dict(type='ToyRunnerNet', norm_cfg=dict(type='SyncBN'))
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ToyRunnerDataset', num_samples=16))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='ToyRankReportHook')]
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_level = 'INFO'
