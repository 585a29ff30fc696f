"""Map the top-level layer folders onto the ``icn`` namespace.

The repository keeps ``domain/``, ``application/``, ... at its top level (so the
layers are what a newcomer sees first) while code imports them as
``icn.domain``, ``icn.application``, ...  setuptools' ``package_dir`` does that
mapping for wheels and for strict editable installs alike; listing every
subpackage here by discovery means adding a module never breaks packaging.
"""

from setuptools import find_packages, setup

LAYERS = ("domain", "application", "projections", "infrastructure", "interfaces")

packages: list[str] = []
package_dir: dict[str, str] = {}
for layer in LAYERS:
    packages.append(f"icn.{layer}")
    package_dir[f"icn.{layer}"] = layer
    for sub in find_packages(layer):
        packages.append(f"icn.{layer}.{sub}")

setup(
    packages=packages,
    package_dir=package_dir,
    # *.txt: the licences of vendored assets (interfaces/http/docs_ui).
    package_data={name: ["py.typed", "*.html", "*.css", "*.js", "*.txt"] for name in packages},
)
