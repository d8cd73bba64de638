"""Packaging: the PEP 561 marker that tells type checkers spikedyn ships its type hints."""

import tomllib
from importlib import resources
from pathlib import Path


def test_py_typed_marker_is_in_the_package_and_in_its_package_data():
    assert resources.files("spikedyn").joinpath("py.typed").is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["spikedyn"]


def test_the_compiled_loops_sources_ship_with_the_package():
    """Catches a wheel without the C++ sources that spikedyn.kernels.cpu compiles on first use."""
    from spikedyn.kernels import cpu

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert {"kernels/*.cpp", "kernels/*.h"} <= set(pyproject["tool"]["setuptools"]["package-data"]["spikedyn"])
    for name in (*cpu.SOURCES, *cpu.HEADERS):
        assert resources.files("spikedyn").joinpath("kernels", name).is_file()
