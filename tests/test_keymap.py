import pytest

from mmmetaformer.keymap import KeyMap, rename_keys


def test_first_matching_rule_renames_the_prefix_and_keeps_the_rest():
    rules = [(r'stage([1-4])\.(\d+)\.attn\.', 'stages.{1-1}.blocks.{2}.token_mixer.'),
             (r'stage([1-4])\.(\d+)\.', 'stages.{1-1}.blocks.{2}.'),
             (r'network\.(0|2|4|6)\.', 'stages.{1//2}.')]
    out = rename_keys({'stage3.10.attn.q.weight': 1, 'stage1.0.mlp.fc1.bias': 2,
                       'network.4.x': 3, 'head.weight': 4}, rules)
    assert out == {'stages.2.blocks.10.token_mixer.q.weight': 1,
                   'stages.0.blocks.0.mlp.fc1.bias': 2,
                   'stages.2.x': 3, 'head.weight': 4}


def test_arithmetic_operators_and_unmatched_keys():
    km = KeyMap([(r'a(\d+)$', 'b{1+2}.{1*3}')])
    assert km.rename('a4') == 'b6.12'
    assert km.rename('a4x') is None  # '$' anchors to the end
    renamed, unmatched = km.apply({'a1': 0, 'z': 1}, keep_unmatched=False)
    assert renamed == {'b3.3': 0} and unmatched == ['z']


def test_collisions_and_bad_rules_are_errors():
    with pytest.raises(KeyError, match="'x' and 'y' both map to 'z'"):
        rename_keys({'x': 0, 'y': 1}, [(r'[xy]$', 'z')])
    with pytest.raises(ValueError, match='group 2'):
        KeyMap([(r'a(\d)', '{2}')])
    with pytest.raises(TypeError, match='pattern: str, template: str'):
        KeyMap([(r'a', lambda m: 'b')])
