"""Dense-checkpoint conversion: detector / segmentor checkpoints trained with
an old framework (mmdet 2.x, mmseg 0.x, detectron2) -> mmdet 3.x / mmseg 1.x
checkpoints for this package's configs.

The command lines are ``tools/model_converters/<source>_to_<target>.py``
(:data:`~.scripts.CONVERTER_SCRIPTS`, :mod:`.cli`), one per *source
format*; the backbone family comes from the config
(``model.backbone.type``), and ``--family`` checks it. A conversion
(:func:`~.run.run_conversion`):

1. reads the file with :func:`mmmetaformer.checkpoint.load_checkpoint_file`
   (``weights_only=True``; no code from the file runs) and checks that its
   keys are of the converter's source format (:mod:`.common`);
2. splits the backbone's keys off and renames them with the backbone class's
   own :meth:`convert_checkpoint` (the family's official key map;
   :mod:`.backbone`);
3. renames the neck and head keys by the source format's rule table
   (:class:`mmmetaformer.keymap.KeyMap`, rules as data): mmdet 2.x and
   mmseg 0.x in :mod:`.openmmlab`, detectron2 in :mod:`.detectron2`; every
   key must be claimed by a rule or by an explicit "ignored" pattern,
   otherwise the conversion stops naming the key;
4. builds the model from the config (without downloading its ImageNet
   weights), reshapes 1x1-conv / Linear weights to the model's shapes, and
   loads the result with ``strict=True`` (``allow_partial=True``: missing
   and unexpected keys are reported instead; :mod:`.model`): a converted
   checkpoint that is saved loads completely;
5. saves ``{'state_dict': ..., 'meta': ...}`` (tensors and plain types only),
   written to a temporary file and renamed (:mod:`.run`).

The checks the tools run before a Runner loads a checkpoint (``load_from``,
``tools/test.py``) are in :mod:`mmmetaformer.runner.load_from`.

This ``__init__`` imports no torch (only :mod:`.scripts`); the names of all
modules are re-exported by :mod:`mmmetaformer.convert`.
"""
from .scripts import CONVERTER_SCRIPTS, SOURCE_DESCRIPTIONS

__all__ = ['CONVERTER_SCRIPTS', 'SOURCE_DESCRIPTIONS']
