def test_importing_the_package_does_not_import_pandas() -> None:
    import subprocess
    import sys

    code = "import sys, finetune_kit; print('pandas' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
