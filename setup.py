"""Build hook: ship the top-level schemas/ folder inside the package as microprep/schemas_data/.

The schemas live at the top of the repository (one place for every tool to find them); wheels
need a copy inside the package, which ``microprep.schemas.load_schema`` falls back to.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSchemas(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, "microprep", "schemas_data")
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(Path(__file__).parent.joinpath("schemas").iterdir()):
            if source.is_file():
                shutil.copy2(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithSchemas})
