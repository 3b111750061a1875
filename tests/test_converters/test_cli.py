"""mmmetaformer.converters.cli and the command lines
``tools/model_converters/<source>_to_<target>.py``: errors exit 2 with one
line naming the problem; the scripts are thin and import the installed
package."""
import os.path as osp
import subprocess
import sys

import pytest

from mmmetaformer.converters.cli import command_line
from mmmetaformer.converters.scripts import CONVERTER_SCRIPTS
from tests.test_converters.helpers import REPO, save
from tests.test_tools import legacy_checkpoints as legacy


def test_command_line_errors_name_the_problem(tmp_path, capsys):
    """The command line exits 2 with one line naming the problem, no
    traceback; a checkpoint of another source format names its converter."""
    src = save(legacy.poolformer_mmseg0('s12'), tmp_path / 'seg.pth')
    with pytest.raises(SystemExit) as exit_info:
        command_line('mmdet2', [
            src, osp.join(REPO, 'configs/semfpn_poolformer_s12.py'),
            str(tmp_path / 'out.pth')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'mmseg 0.x segmentor checkpoint' in err
    assert 'tools/model_converters/mmseg0_to_mmseg1.py' in err


def test_converter_scripts_run_as_installed_commands():
    """The converters are thin command lines over mmmetaformer.convert:
    runnable from any directory without path tricks."""
    for fmt, script in CONVERTER_SCRIPTS.items():
        result = subprocess.run(
            [sys.executable, osp.join(REPO, script), '--help'],
            cwd='/', capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert '--family' in result.stdout and '--allow-partial' in \
            result.stdout


def test_tools_have_no_path_tricks():
    """The command lines import the installed package: no ``sys.path``
    inserts, file-path module loading or ``sys.modules`` lookups."""
    import glob
    import re
    scripts = glob.glob(osp.join(REPO, 'tools', '*.py')) + glob.glob(
        osp.join(REPO, 'tools', 'model_converters', '*.py'))
    assert len(scripts) >= 6
    pattern = re.compile(r'sys\.path|spec_from_file_location|sys\.modules|'
                         r'SourceFileLoader|runpy')
    offenders = {}
    for script in scripts:
        with open(script) as f:
            found = pattern.findall(f.read())
        if found:
            offenders[osp.relpath(script, REPO)] = found
    assert not offenders
