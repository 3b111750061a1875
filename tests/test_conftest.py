"""tests/conftest.py deletes the ``tmp_path`` of a passed test when it
ends (the two tests run in file order)."""
WRITTEN = []


def test_writes_a_file(tmp_path):
    (tmp_path / 'checkpoint.pth').write_bytes(b'0' * 1024)
    WRITTEN.append(tmp_path)
    assert tmp_path.is_dir()


def test_the_passed_tests_directory_is_gone():
    assert len(WRITTEN) == 1
    assert not WRITTEN[0].exists()
