"""Runner hooks of mmmetaformer (registered in
:data:`mmmetaformer.registry.HOOKS`, reachable from any OpenMMLab config as
``type='mmmetaformer.<Name>'``)."""
from .checkpoint_hook import AtomicCheckpointHook
from .validate_before_train_hook import ValidateBeforeTrainHook

__all__ = ['AtomicCheckpointHook', 'ValidateBeforeTrainHook']
