"""A hook for the demo: the untrained model's validation metrics, logged
before training starts, so the log shows how much the run learned."""
from mmengine.hooks import Hook

from mmmetaformer.registry import HOOKS


@HOOKS.register_module()
class ValidateBeforeTrainHook(Hook):
    """Run the validation loop once before the first training iteration.

    The metrics are logged (and written to ``vis_data/scalars.json``) at step
    0, before any parameter update, after the model's weights have been
    initialised. Nothing happens when training resumes from a checkpoint
    (``runner.iter > 0``).

    Use in a config::

        custom_imports = dict(imports=['mmmetaformer'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='mmmetaformer.ValidateBeforeTrainHook')]
    """
    priority = 'LOWEST'  # after the other hooks' before_train

    def before_train(self, runner) -> None:
        if runner.val_loop is None:
            raise ValueError('ValidateBeforeTrainHook needs a validation '
                             'loop: set val_dataloader, val_evaluator and '
                             'val_cfg in the config.')
        if runner.iter == 0:
            runner.val_loop.run()
