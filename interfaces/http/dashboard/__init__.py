"""The members' dashboard: static files the node serves at ``/`` (see :mod:`.serve`).

Every file here is served as is: no build step, no internet at run time. The
subpackages (``lib``, ``pages``, ``vendor``) hold only assets; they are
packages so that a wheel ships their files (``setup.py``'s package_data).
"""
