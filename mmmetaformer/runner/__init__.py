"""What ``tools/train.py``, ``tools/test.py`` and ``tools/reproduce.py`` do
around building an mmengine Runner (none of it happens at
``import mmmetaformer``), one concern per module:

* :mod:`~mmmetaformer.runner.data_checks` -- the files and folders a
  config's dataloaders (and evaluators) read must exist before a Runner is
  built, so that a missing dataset ends the run at once with a message
  naming the path and how to provide it;
* :mod:`~mmmetaformer.runner.cpu_setup` -- on a torch without CUDA, a
  ``gloo`` process group for distributed launchers and deliberate
  threads/workers (:func:`~mmmetaformer.runner.cpu_setup.prepare_runtime`);
* :mod:`~mmmetaformer.runner.loaders` -- mmengine's ``load_from`` /
  ``resume`` under ``weights_only=True``
  (:func:`~mmmetaformer.runner.loaders.enable_safe_runner_checkpoints`);
* :mod:`~mmmetaformer.runner.saving` -- atomic checkpoints (a kill during a
  save never loses the previous checkpoint) and output directories checked
  before training (writable, space for one checkpoint);
* :mod:`~mmmetaformer.runner.resume` -- the newest complete and loadable
  checkpoint of a work dir for ``--resume``;
* :mod:`~mmmetaformer.runner.resume_config` and
  :mod:`~mmmetaformer.runner.replay` -- resume after a config change: what
  differs from the checkpoint's config is applied (the new schedule
  replayed to the resumed step) or refused with a message naming it;
* :mod:`~mmmetaformer.runner.run_length` -- ``--epochs`` / ``--iters``;
* :mod:`~mmmetaformer.runner.pretrained` -- ``Pretrained`` init_cfgs
  dropped or allowed to load partially;
* :mod:`~mmmetaformer.runner.args` -- the command line the Runner tools
  share and the config it gives;
* :mod:`~mmmetaformer.runner.load_from` -- ``load_from`` checked before
  the Runner loads it (a file of another format or family is refused with
  the converter to use);
* :mod:`~mmmetaformer.runner.build` --
  :func:`~mmmetaformer.runner.build.build_runner`, which applies all of it
  as the tools do.

Library users who build their own Runner can opt in to the same checkpoint
handling with one call,
``mmmetaformer.runner.loaders.enable_safe_runner_checkpoints()``, and the
atomic checkpoint hook with
``default_hooks.checkpoint.type='mmmetaformer.AtomicCheckpointHook'``.

This package imports none of its modules: import the one you need. Its
public names are also importable from :mod:`mmmetaformer.launch`, their
former home.
"""
