"""Checkpoint loading of the backbones: key-format detection, renaming by
:mod:`mmmetaformer.keymap` tables, checks, input-channel adaptation and a
:class:`~mmmetaformer.checkpoint.LoadReport`."""
import logging
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmmetaformer.checkpoint import (LoadReport, extract_state_dict,
                                     load_checkpoint_file,
                                     load_state_dict_with_report)
from mmmetaformer.keymap import Rule, rename_keys
from .arguments import NUM_LEVELS


class CheckpointLoading:
    """Loading official, timm-format and this package's checkpoints (a part
    of :class:`~.base.MetaFormerBackbone`).

    Class attributes: ``official_key_rules`` / ``timm_key_rules``
    (:mod:`mmmetaformer.keymap` tables), ``checkpoint_formats`` (how a key
    format is recognised), ``official_dense_key``,
    ``ignored_checkpoint_keys`` and ``ignore_unused_out_norms``; optionally
    the hook :meth:`check_checkpoint`.
    """
    # Official key names -> this package's (rules of mmmetaformer.keymap).
    official_key_rules: Sequence[Rule] = ()
    # timm's names -> this package's (empty: timm's names are ours).
    timm_key_rules: Sequence[Rule] = ()
    # (format, key regex[, tensor ndim]) entries, checked in order: the
    # first format one of whose regexes matches a key (re.match; and whose
    # tensor has ``ndim`` dimensions, if given) is the checkpoint's format;
    # none: 'native'. 'official*' formats are renamed by official_key_rules.
    checkpoint_formats: Sequence[tuple] = ()
    # An 'official' checkpoint with a key matching this regex holds the
    # dense output norms: its format is 'official-dense'.
    official_dense_key: Optional[str] = None
    # Checkpoint keys (after conversion) that are deliberately not used,
    # e.g. the ImageNet classifier.
    ignored_checkpoint_keys: Tuple[str, ...] = (r'head\.', r'norm\.')
    # Also ignore the output norms of stages that are not returned (ResT).
    ignore_unused_out_norms: bool = False

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k release of ``arch``.

        Every family implements it (some with a keyword such as
        ``distilled``); an arch without a release, or a family whose
        releases have no direct-download URL, is a ``ValueError`` saying
        which archs have one or where the weights are.
        """
        raise NotImplementedError(
            f'{cls.__name__} must implement imagenet_url.')

    @classmethod
    def _release_name(cls, arch: str, releases: Dict[str, str]) -> str:
        """``releases[arch]``, or a ``ValueError`` naming ``arch`` and the
        valid choices (the archs with an official ImageNet-1k release)."""
        if arch not in releases:
            raise ValueError(
                f'No official ImageNet-1k release of {cls.__name__} arch '
                f'{arch!r}; valid choices are {sorted(releases)}.')
        return releases[arch]

    @classmethod
    def detect_key_format(cls, state_dict: Dict[str, torch.Tensor]) -> str:
        """The key format of ``state_dict`` from ``checkpoint_formats``:
        ``'official'`` (``'official-dense'`` with ``official_dense_key``),
        ``'timm'``, ... or ``'native'`` (this package's names)."""
        for key_format, pattern, *ndim in cls.checkpoint_formats:
            if any(re.match(pattern, k) and (not ndim or v.dim() == ndim[0])
                   for k, v in state_dict.items()):
                if (key_format == 'official' and cls.official_dense_key
                        and any(re.match(cls.official_dense_key, k)
                                for k in state_dict)):
                    return 'official-dense'
                return key_format
        return 'native'

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Rename a checkpoint's keys to this module's names.

        The format is detected by :meth:`detect_key_format`; official keys
        are renamed by ``official_key_rules``, timm keys by
        ``timm_key_rules`` (:mod:`mmmetaformer.keymap` tables; empty: the
        names are this package's), other formats keep their names. A pure
        renaming: tensors are shared, not copied.

        Returns:
            tuple[dict, str]: The renamed state_dict and the detected format.
        """
        key_format = cls.detect_key_format(state_dict)
        if key_format.startswith('official'):
            return rename_keys(state_dict, cls.official_key_rules), key_format
        if key_format == 'timm' and cls.timm_key_rules:
            return rename_keys(state_dict, cls.timm_key_rules), key_format
        return dict(state_dict), key_format

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Family-specific checks of a converted state_dict before anything
        is copied (raise a ``ValueError`` naming the key). Default: none."""

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """Regexes of keys a checkpoint of ``key_format`` cannot contain.

        ImageNet releases (official or timm) have no dense output norms;
        native and official dense checkpoints have them.
        """
        if key_format in ('native', 'official-dense'):
            return ()
        return tuple(rf'norm{i}\.' for i in self.out_indices)

    def ignored_keys(self) -> Tuple[str, ...]:
        """Regexes of converted checkpoint keys that are deliberately not
        loaded: ``ignored_checkpoint_keys`` and, with
        ``ignore_unused_out_norms``, the output norms this instance does not
        have."""
        if not self.ignore_unused_out_norms:
            return tuple(self.ignored_checkpoint_keys)
        unused = tuple(rf'norm{i}\.' for i in range(NUM_LEVELS)
                       if i not in self.out_indices or self.out_norm is None)
        return tuple(self.ignored_checkpoint_keys) + unused

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location='cpu',
                        allow_partial: bool = False) -> LoadReport:
        """Load a checkpoint file with key conversion, log and return a report.

        Args:
            checkpoint (str): Local path or URL: a torch file, a
                safetensors file or a numpy ``.npz`` (recognised by content).
            prefix (str, optional): Key prefix of the backbone in the file,
                e.g. ``'backbone.'`` for mmdet/mmseg checkpoints.
            map_location: Passed to :func:`torch.load`.
            allow_partial (bool): Load a checkpoint that leaves many keys
                missing or unexpected (a warning) instead of refusing it
                (see :func:`~mmmetaformer.checkpoint.
                load_state_dict_with_report`).
        """
        ckpt = load_checkpoint_file(checkpoint, map_location=map_location)
        state_dict = extract_state_dict(ckpt, prefix)
        return self.load_converted(state_dict, source=checkpoint,
                                   allow_partial=allow_partial)

    def adapt_input_channels(self,
                             state_dict: Dict[str, torch.Tensor]) -> List[str]:
        """Fit the stem's first convolution of a (converted) checkpoint to
        ``in_channels``, in place; return a description of what changed.

        A weight ``(O, C_ckpt, k, k)`` for a stem with ``C = in_channels !=
        C_ckpt`` inputs becomes the mean of its ``C_ckpt`` input filters,
        repeated ``C`` times and scaled by ``C_ckpt / C``: an image whose
        ``C`` channels all hold the same values gives the same response as
        the pretrained stem on a ``C_ckpt``-channel image with those values
        (e.g. RGB weights on a 4-channel or grey input). Other shape
        differences are left to the loader's shape check.
        """
        name = next(n for n, m in self.stem.named_modules()
                    if isinstance(m, nn.Conv2d))
        key = f'stem.{name}.weight' if name else 'stem.weight'
        value = state_dict.get(key)
        target = self.stem.get_submodule(name).weight
        if (value is None or value.dim() != 4
                or value.shape[1] == target.shape[1]
                or value.shape[0] != target.shape[0]
                or value.shape[2:] != target.shape[2:]):
            return []
        source = value.shape[1]
        state_dict[key] = value.mean(1, keepdim=True).repeat(
            1, self.in_channels, 1, 1) * (source / self.in_channels)
        return [
            f'{key}: {source} -> {self.in_channels} input channels '
            f'(in_channels={self.in_channels}; the mean of the {source} '
            f'pretrained filters, repeated, scaled by {source}/'
            f'{self.in_channels})'
        ]

    def load_converted(self, state_dict: Dict[str, torch.Tensor],
                       source: str = '<state_dict>',
                       allow_partial: bool = False) -> LoadReport:
        """Convert ``state_dict``'s keys, check it, adapt the stem to
        ``in_channels`` (:meth:`adapt_input_channels`), load it, log and
        return a report (its ``adapted`` lists the adapted keys).
        ``allow_partial``: see :meth:`load_pretrained`."""
        converted, key_format = self.convert_checkpoint(state_dict)
        self.check_checkpoint(converted)
        adapted = self.adapt_input_channels(converted)
        report = load_state_dict_with_report(
            self,
            converted,
            source=source,
            key_format=key_format,
            ignore_patterns=self.ignored_keys(),
            expected_missing_patterns=self.expected_missing_keys(key_format),
            allow_partial=allow_partial,
            original=state_dict)
        report.adapted = adapted
        print_log(
            f'{type(self).__name__}: {report.summary()}',
            logger='current',
            level=logging.INFO if report.clean else logging.WARNING)
        return report
